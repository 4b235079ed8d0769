"""VoServiceClient: TAP (sync and UWS async), SCS, SIA v2 and VOSI over httpx, read with pyvo.

Why httpx and not pyvo's own clients: pyvo speaks through ``requests`` (blocking), follows
redirects with the session's credentials, and its async helpers poll with ``time.sleep``.
Here every call is async and cancellable (a cancelled job stops waiting at once and aborts its
UWS job), bounded by one deadline, and redirects are followed by hand so credentials reach
only the configured service's origin. What pyvo does best is kept: its result classes
(``TAPResults``, ``SCSResults``, ``SIA2Results``) read the VOTable, find QUERY_STATUS / the
SCS error INFO, and raise ``DALQueryError`` with the service's message; its VOSI parsers read
capabilities and tables. Parsing runs in a worker thread (astropy is CPU-bound).
"""

from __future__ import annotations

import base64
import io
import math
import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import anyio
import httpx
import structlog

from vre_common.settings import HttpClientSettings
from vre_ivoa.backends.base import ResultDocument, TableUpload
from vre_ivoa.config import LimitSettings, VoServiceConfig
from vre_ivoa.errors import (
    QueryRejectedError,
    ResultTooLargeError,
    VoServiceError,
    VoServiceTimeoutError,
    VoServiceUnavailableError,
)
from vre_ivoa.models import Capability, Column, Cone, Interface, SiaParameters, VoTable

log = structlog.get_logger("vre.ivoa.vo")

MAX_REDIRECTS = 5
FINAL_UWS_PHASES = frozenset({"COMPLETED", "ERROR", "ABORTED"})
UWS_NS = "{http://www.ivoa.net/xml/UWS/v1.0}"
VOSI_BYTES = 32 * 1024 * 1024
T = TypeVar("T")
Params = dict[str, str] | list[tuple[str, str | int | float | bool | None]]


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL: credentials go to one origin only."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _query_error(service: str, message: str, field: str) -> QueryRejectedError:
    message = " ".join(message.split())[:2000] or "no message"
    return QueryRejectedError(
        f"{service} refused the query: {message}",
        errors=[{"loc": ["body", field], "msg": message, "type": "vo_service"}],
        extra={"service_message": message},
    )


def parse_result(
    data: bytes, protocol: str, *, service: str, url: str, field: str
) -> ResultDocument:
    """Read a query answer with pyvo's result class for ``protocol`` (blocking: a thread)."""
    from astropy.io.votable import parse as parse_votable
    from pyvo.dal import DALFormatError, DALQueryError, SCSResults, SIA2Results, TAPResults

    results_class = {"tap": TAPResults, "scs": SCSResults, "sia2": SIA2Results}[protocol]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's VOWarnings, pyvo's overflow warning
        try:
            votable = parse_votable(io.BytesIO(data), verify="ignore")
        except Exception as exc:  # any parse failure: the answer is not a VOTable
            raise VoServiceError(
                f"{service} answered something that is not a VOTable "
                f"({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        try:
            results = results_class(votable, url=url)
        except DALQueryError as exc:
            raise _query_error(service, str(exc.reason or exc), field) from exc
        except DALFormatError as exc:
            raise VoServiceError(f"{service} answered without a results table: {exc}") from exc
        infos = {}
        for info in getattr(results, "_infos", None) or []:
            name = getattr(info, "name", None)
            if name and isinstance(info.value, str):
                infos[str(name)] = info.value[:500]
        found = getattr(results, "_status", None) or ("OK", None)
        status = str(found[0] or "OK").upper()
        return ResultDocument(
            votable=data,
            rows=len(results),
            columns=list(results.fieldnames),
            truncated=status == "OVERFLOW",
            source_url=url,
            infos=infos,
        )


def error_message(data: bytes) -> str:
    """The message of a UWS error document (a VOTable with QUERY_STATUS=ERROR, or text)."""
    from astropy.io.votable import parse as parse_votable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            votable = parse_votable(io.BytesIO(data), verify="ignore")
        except Exception:  # plain text, HTML …
            return data.decode("utf-8", "replace").strip()[:2000]
        for resource in votable.resources:
            for info in resource.infos:
                if info.name == "QUERY_STATUS" and info.content:
                    return str(info.content).strip()
        for info in votable.infos:
            if info.name == "QUERY_STATUS" and info.content:
                return str(info.content).strip()
    return data.decode("utf-8", "replace").strip()[:2000]


def parse_capabilities(data: bytes) -> list[Capability]:
    """VOSI capabilities with pyvo's parser (blocking)."""
    from pyvo.io.vosi import parse_capabilities as vosi_capabilities

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = vosi_capabilities(io.BytesIO(data), pedantic=False)
    out: list[Capability] = []
    for cap in parsed:
        languages: list[str] = []
        for language in getattr(cap, "languages", None) or []:
            versions = [str(v.content if hasattr(v, "content") else v) for v in language.versions]
            languages += [f"{language.name}-{v}" for v in versions] or [str(language.name)]
        out.append(
            Capability(
                standard_id=cap.standardid,
                interfaces=[
                    Interface(
                        access_url=str(i.accessurls[0].content) if i.accessurls else "",
                        role=getattr(i, "role", None),
                        version=getattr(i, "version", None),
                    )
                    for i in cap.interfaces
                ],
                languages=languages,
                upload_methods=[str(m.ivo_id) for m in (getattr(cap, "uploadmethods", None) or [])],
                output_formats=[str(f.mime) for f in (getattr(cap, "outputformats", None) or [])],
            )
        )
    return out


def parse_tables(data: bytes) -> list[VoTable]:
    """VOSI tables with pyvo's parser (blocking)."""
    from pyvo.io.vosi import parse_tables as vosi_tables

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = vosi_tables(io.BytesIO(data), pedantic=False)
    out: list[VoTable] = []
    schemas = getattr(parsed.tableset, "schemas", None) or []
    pairs = [(s.name, t) for s in schemas for t in s.tables]
    if not pairs and getattr(parsed.table, "name", None):  # a single-table document
        pairs.append((None, parsed.table))
    for schema_name, table in pairs:
        out.append(
            VoTable(
                name=str(table.name),
                schema_name=str(schema_name) if schema_name else None,
                description=_clean(table.description),
                columns=[
                    Column(
                        name=str(c.name),
                        datatype=str(c.datatype.content) if c.datatype else None,
                        unit=str(c.unit) if c.unit else None,
                        ucd=str(c.ucd) if c.ucd else None,
                        description=_clean(c.description),
                    )
                    for c in table.columns
                ],
            )
        )
    return out


def _clean(text: Any) -> str | None:
    return " ".join(str(text).split()) or None if text else None


class _Answer:
    """A response read into memory (bounded)."""

    def __init__(self, response: httpx.Response, body: bytes) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.url = str(response.url)
        self.body = body


class VoServiceClient:
    """One configured VO service (see the module docstring)."""

    def __init__(
        self,
        config: VoServiceConfig,
        *,
        limits: LimitSettings,
        http: HttpClientSettings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.limits = limits
        self._origin = origin(config.url)
        self._owns = client is None
        self._http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(http.read_timeout, connect=http.connect_timeout),
            limits=httpx.Limits(max_connections=http.max_connections),
            verify=config.verify,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool (if this client made it)."""
        if self._owns:
            await self._http.aclose()

    # ------------------------------------------------------------------ transport

    def _credentials(self, url: str) -> dict[str, str]:
        """Headers with the configured credentials, for the service's own origin only."""
        creds = self.config.credentials
        if creds is None or origin(url) != self._origin:
            return {}
        headers = {k: v.get_secret_value() for k, v in creds.headers.items()}
        if creds.bearer_token is not None:
            headers["Authorization"] = f"Bearer {creds.bearer_token.get_secret_value()}"
        elif creds.username is not None and creds.password is not None:
            pair = f"{creds.username}:{creds.password.get_secret_value()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return headers

    async def _call(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        params: Params | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        follow: bool = True,
        max_bytes: int | None = None,
        seconds: float,
    ) -> _Answer:
        """One HTTP exchange (redirects by hand), bounded by ``seconds`` seconds overall."""
        try:
            with anyio.fail_after(seconds):
                return await self._exchange(
                    method, url, params=params, data=data, files=files, follow=follow,
                    max_bytes=max_bytes or self.limits.max_result_bytes,
                )  # fmt: skip
        except TimeoutError as exc:
            raise VoServiceTimeoutError(
                f"{self.name} did not answer within {seconds:g} s ({operation})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise VoServiceTimeoutError(
                f"{self.name} did not answer in time ({operation})"
            ) from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:  # fmt: skip
            raise VoServiceUnavailableError(
                f"{self.name} is unreachable ({operation}): {type(exc).__name__}"
            ) from exc
        except httpx.HTTPError as exc:
            raise VoServiceError(
                f"{self.name} call failed ({operation}): {type(exc).__name__}"
            ) from exc

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None,
        data: Mapping[str, str] | None,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        follow: bool,
        max_bytes: int,
    ) -> _Answer:
        for _ in range(MAX_REDIRECTS + 1):
            request = self._http.build_request(
                method, url, params=params, data=data, files=files, headers=self._credentials(url)
            )
            response = await self._http.send(request, stream=True)
            try:
                if follow and response.is_redirect and "location" in response.headers:
                    url = urljoin(str(request.url), response.headers["location"])
                    params = None
                    if response.status_code in (301, 302, 303) and method not in ("GET", "HEAD"):
                        method, data, files = "GET", None, None
                    continue
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ResultTooLargeError(
                            f"the answer of {self.name} is larger than {max_bytes} bytes; ask "
                            "fewer rows (maxrec) or columns",
                            errors=[{"loc": ["body", "maxrec"], "msg": "result too large",
                                     "type": "value_error"}],
                        )  # fmt: skip
                    chunks.append(chunk)
                return _Answer(response, b"".join(chunks))
            finally:
                await response.aclose()
        raise VoServiceError(f"{self.name} redirected more than {MAX_REDIRECTS} times")

    async def _thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    def _check_status(self, answer: _Answer, operation: str) -> None:
        if answer.status >= 500:
            raise VoServiceError(f"{self.name} answered HTTP {answer.status} ({operation})")
        if answer.status in (401, 403):
            raise VoServiceError(
                f"{self.name} refused our credentials (HTTP {answer.status}, {operation}); "
                "an operator must check the service's configured credentials"
            )

    async def _result(
        self, answer: _Answer, protocol: str, operation: str, field: str
    ) -> ResultDocument:
        if answer.status >= 500 or answer.status in (401, 403):
            self._check_status(answer, operation)
        if answer.status >= 400 and b"VOTABLE" not in answer.body[:2000].upper():
            raise _query_error(
                self.name, f"HTTP {answer.status}: {answer.body[:500].decode('utf-8', 'replace')}",
                field,
            )  # fmt: skip
        return await self._thread(
            parse_result, answer.body, protocol, service=self.name, url=answer.url, field=field
        )

    # ------------------------------------------------------------------ VOSI

    def _vosi_url(self, endpoint: str) -> str:
        if self.config.type == "tap":
            return f"{self.config.url}/{endpoint}"
        # SCS/SIA: VOSI endpoints sit next to the query URL (DaCHS: …/scs.xml → …/capabilities)
        return urljoin(self.config.url, endpoint)

    async def capabilities(self) -> list[Capability]:
        answer = await self._call(
            "GET", self._vosi_url("capabilities"), "capabilities",
            seconds=30.0, max_bytes=VOSI_BYTES,
        )  # fmt: skip
        self._check_status(answer, "capabilities")
        if answer.status != 200:
            raise VoServiceError(f"{self.name} has no VOSI capabilities (HTTP {answer.status})")
        try:
            return await self._thread(parse_capabilities, answer.body)
        except Exception as exc:  # pyvo raises many kinds on bad XML
            raise VoServiceError(f"{self.name}: unreadable VOSI capabilities ({exc})") from exc

    async def tables(self) -> list[VoTable]:
        if self.config.type != "tap":
            return []
        answer = await self._call(
            "GET", self._vosi_url("tables"), "tables", seconds=60.0, max_bytes=VOSI_BYTES
        )
        self._check_status(answer, "tables")
        if answer.status != 200:
            raise VoServiceError(f"{self.name} has no VOSI tables (HTTP {answer.status})")
        try:
            return await self._thread(parse_tables, answer.body)
        except Exception as exc:  # pyvo raises many kinds on bad XML
            raise VoServiceError(f"{self.name}: unreadable VOSI tables ({exc})") from exc

    # ------------------------------------------------------------------ TAP

    def _tap_params(
        self, adql: str, maxrec: int, upload: TableUpload | None
    ) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]] | None]:
        data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "MAXREC": str(maxrec)}
        files = None
        if upload is not None:
            data["UPLOAD"] = f"{upload.name},param:{upload.name}"
            files = {
                upload.name: (f"{upload.name}.vot", upload.votable, "application/x-votable+xml")
            }
        return data, files

    async def tap_sync(
        self, adql: str, *, maxrec: int, upload: TableUpload | None, seconds: float
    ) -> ResultDocument:
        data, files = self._tap_params(adql, maxrec, upload)
        answer = await self._call(
            "POST", f"{self.config.url}/sync", "tap_sync", data=data, files=files, seconds=seconds
        )
        return await self._result(answer, "tap", "tap_sync", "adql")

    async def tap_submit(
        self, adql: str, *, maxrec: int, upload: TableUpload | None, seconds: float
    ) -> str:
        data, files = self._tap_params(adql, maxrec, upload)
        data["EXECUTIONDURATION"] = str(max(1, math.ceil(seconds)))
        created = await self._call(
            "POST", f"{self.config.url}/async", "tap_submit", data=data, files=files,
            follow=False, seconds=min(seconds, 60.0),
        )  # fmt: skip
        self._check_status(created, "tap_submit")
        location = created.headers.get("location")
        if created.status not in (201, 302, 303) or not location:
            raise VoServiceError(f"{self.name} did not create an async job (HTTP {created.status})")
        job_url = urljoin(f"{self.config.url}/async", str(location))
        started = await self._call(
            "POST", f"{job_url}/phase", "tap_run", data={"PHASE": "RUN"}, follow=False,
            seconds=min(seconds, 60.0),
        )  # fmt: skip
        self._check_status(started, "tap_run")
        if started.status >= 400:
            raise VoServiceError(f"{self.name} did not start the job (HTTP {started.status})")
        return job_url

    async def _phase(self, job_url: str, wait: float, current: str | None) -> str:
        params = {"WAIT": str(max(1, int(wait)))}
        if current:
            params["PHASE"] = current
        answer = await self._call(
            "GET", job_url, "tap_phase", params=params, seconds=wait + 30.0, max_bytes=1 << 20
        )
        self._check_status(answer, "tap_phase")
        if answer.status == 404:
            raise VoServiceError(f"{self.name} lost the async job {job_url}")
        try:
            root = ET.fromstring(answer.body)  # noqa: S314 - the service's UWS document
        except ET.ParseError as exc:
            raise VoServiceError(f"{self.name} answered an unreadable UWS job document") from exc
        phase = root.find(f"{UWS_NS}phase")
        if phase is None or not phase.text:
            raise VoServiceError(f"{self.name}'s UWS job document has no phase")
        return phase.text.strip().upper()

    async def tap_wait(self, job_url: str, *, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        phase: str | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VoServiceTimeoutError(
                    f"the query at {self.name} did not finish within {seconds:g} s"
                )
            asked = time.monotonic()
            phase = await self._phase(job_url, min(remaining, 10.0), phase)
            if phase in FINAL_UWS_PHASES:
                return phase
            if time.monotonic() - asked < self.limits.poll_interval_seconds:
                # The service ignored WAIT (UWS 1.0): poll, gently.
                await anyio.sleep(min(self.limits.poll_interval_seconds, max(0.0, remaining)))

    async def tap_result(self, job_url: str) -> ResultDocument:
        answer = await self._call(
            "GET", f"{job_url}/results/result", "tap_result", seconds=self.limits.max_seconds
        )
        return await self._result(answer, "tap", "tap_result", "adql")

    async def tap_error(self, job_url: str) -> str:
        answer = await self._call(
            "GET", f"{job_url}/error", "tap_error", seconds=30.0, max_bytes=1 << 20
        )
        if answer.status >= 400 or not answer.body:
            return f"the async job failed (no error document, HTTP {answer.status})"
        return await self._thread(error_message, answer.body)

    async def tap_abort(self, job_url: str) -> None:
        try:
            await self._call("DELETE", job_url, "tap_abort", follow=False, seconds=10.0)
        except (VoServiceError, VoServiceTimeoutError, VoServiceUnavailableError) as exc:
            log.info("tap_abort_failed", service=self.name, error=exc.detail)

    # ------------------------------------------------------------------ SCS, SIA

    async def cone(self, cone: Cone, *, maxrec: int, seconds: float) -> ResultDocument:
        params = {"RA": repr(cone.ra), "DEC": repr(cone.dec), "SR": repr(cone.radius),
                  "VERB": "2", "MAXREC": str(maxrec)}  # fmt: skip
        answer = await self._call("GET", self.config.url, "scs", params=params, seconds=seconds)
        document = await self._result(answer, "scs", "scs", "cone")
        return _cap_rows(document, maxrec)

    async def sia(self, params: SiaParameters, *, maxrec: int, seconds: float) -> ResultDocument:
        query = {"POS": f"CIRCLE {params.ra!r} {params.dec!r} {params.radius!r}",
                 "MAXREC": str(maxrec)}  # fmt: skip
        if params.band is not None:
            query["BAND"] = f"{params.band[0]!r} {params.band[1]!r}"
        if params.collection:
            query["COLLECTION"] = params.collection
        answer = await self._call(
            "GET", self.config.url, "sia2", params=_with_calib(query, params), seconds=seconds
        )
        return await self._result(answer, "sia2", "sia2", "sia")


def _with_calib(query: dict[str, str], params: SiaParameters) -> Params:
    pairs: list[tuple[str, str | int | float | bool | None]] = list(query.items())
    pairs += [("CALIB", str(level)) for level in params.calib_level or []]
    return pairs


def _cap_rows(document: ResultDocument, maxrec: int) -> ResultDocument:
    """SCS has no MAXREC in its standard: a service may answer more rows; mark truncation."""
    if document.rows > maxrec:
        document.truncated = True
    return document
