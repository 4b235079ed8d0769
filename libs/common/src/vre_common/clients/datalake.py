"""Async client of the datalake service's HTTP API, used by other services with the caller's token.

Usage (one long-lived client per service, one sibling per request)::

    datalake = DatalakeClient("http://127.0.0.1:8000/datalake")      # shares one pool
    dl = datalake.with_token(bearer_token(request))                   # the caller's token
    files = await dl.resolve(["user.alice:run42"], rse_expression="LOCAL_2")
    uploaded = await dl.upload("user.alice", "out/result.fits", chunks(), rse="LOCAL_1")
    async with dl.download("user.alice", "out/result.fits") as body:
        async for chunk in body.iter_bytes():
            ...

Errors: a problem answered by the datalake service is raised as the same class of
:mod:`vre_common.errors` (404 → ``NotFoundError``, 409 → ``ConflictError``, 403 →
``ForbiddenError``, 422 → ``InvalidInputError`` with ``errors``, 507 → ``QuotaExceededError``,
503 → ``BackendUnavailableError`` …) with the service's ``detail``/``extra``; transport failures
become 503/504/502 through :func:`vre_common.http.backend_call`, so a caller can let them
propagate and its own client sees a faithful problem.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from vre_common.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaExceededError,
    RateLimitedError,
    VreError,
)
from vre_common.http import backend_call, make_http_client
from vre_common.settings import HttpClientSettings

DidType = Literal["file", "dataset", "container"]
NDJSON = "application/x-ndjson"
DEFAULT_CHUNK = 1 << 20
_Params = list[tuple[str, str | int | float | bool | None]]


class _Tolerant(BaseModel):
    """Read models ignore fields they do not know (the service may add some)."""

    model_config = ConfigDict(extra="ignore")


class DidRef(_Tolerant):
    """A data identifier ``scope:name``."""

    scope: str
    name: str

    @classmethod
    def parse(cls, did: str | DidRef) -> DidRef:
        """Accept ``"scope:name"`` or a DidRef."""
        if isinstance(did, DidRef):
            return did
        scope, sep, name = did.partition(":")
        if not sep or not scope or not name:
            raise InvalidInputError(
                f"{did!r} is not a DID (scope:name)",
                errors=[{"loc": ["did"], "msg": "expected scope:name", "type": "value_error"}],
            )
        return cls(scope=scope, name=name)

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}"


class Did(_Tolerant):
    """A DID as the datalake service describes it (file, dataset or container)."""

    scope: str
    name: str
    type: DidType
    bytes: int | None = None
    length: int | None = None
    adler32: str | None = None
    md5: str | None = None
    account: str | None = None
    open: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ResolvedReplica(_Tolerant):
    """Where one file can be read: the RSE, the URL (PFN) and, for local RSEs, the path."""

    rse: str
    url: str
    path: str | None = None
    preferred: bool = False


class ResolvedFile(_Tolerant):
    """A file reached from the DIDs given to ``resolve``, with checksums and replicas."""

    scope: str
    name: str
    bytes: int
    adler32: str | None = None
    md5: str | None = None
    parent: str | None = Field(default=None, description="The DID it was resolved from.")
    replicas: list[ResolvedReplica] = Field(default_factory=list)


class UploadedFile(_Tolerant):
    """The answer to an upload: the registered file and where it was written."""

    scope: str
    name: str
    bytes: int
    adler32: str
    md5: str
    rse: str
    pfn: str | None = None
    dataset: str | None = None
    created: bool = True


class Download:
    """An open download: headers known, body streamed by :meth:`iter_bytes`."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        headers = response.headers
        self.status_code = response.status_code
        self.size: int | None = (
            int(headers["content-length"]) if "content-length" in headers else None
        )
        self.etag: str | None = headers.get("etag")
        self.adler32: str | None = headers.get("x-checksum-adler32")
        self.md5: str | None = headers.get("x-checksum-md5")
        self.content_range: str | None = headers.get("content-range")
        self.content_type: str | None = headers.get("content-type")

    async def iter_bytes(self, chunk_size: int = DEFAULT_CHUNK) -> AsyncIterator[bytes]:
        """The body, chunk by chunk (the service verifies the checksum of full reads)."""
        async with backend_call("datalake", "download"):
            async for chunk in self._response.aiter_bytes(chunk_size):
                yield chunk


class QuotaRefusedError(QuotaExceededError):
    """A quota refusal answered as 403 rather than 507 (same slug, same numbers in ``extra``)."""

    status = 403


_ERRORS: dict[int, type[VreError]] = {
    400: BadRequestError,
    401: InvalidTokenError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    416: InvalidInputError,
    422: InvalidInputError,
    502: BadGatewayError,
    504: BackendTimeoutError,
    507: QuotaExceededError,
}


async def raise_for_problem(response: httpx.Response, operation: str) -> None:
    """Raise the :mod:`vre_common.errors` class matching a problem answer (no-op on 2xx)."""
    if response.is_success:
        return
    await response.aread()
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    detail = str(body.get("detail") or f"datalake answered {status} ({operation})")
    errors = body.get("errors") if isinstance(body.get("errors"), list) else None
    known = {"type", "title", "status", "detail", "instance", "request_id", "errors"}
    extra = {k: v for k, v in body.items() if k not in known}
    if status == 503:
        retry = response.headers.get("retry-after", "5")
        raise BackendUnavailableError(
            detail, retry_after=int(retry) if retry.isdigit() else 5, extra=extra
        )
    if status == 429:
        retry = response.headers.get("retry-after", "1")
        raise RateLimitedError(detail, retry_after=int(retry) if retry.isdigit() else 1)
    cls = _ERRORS.get(status)
    if cls is None:
        cls = BadGatewayError if status >= 500 else BadRequestError
    if cls is ForbiddenError and str(body.get("type", "")).endswith("/quota-exceeded"):
        cls = QuotaRefusedError
    raise cls(detail, errors=errors, extra=extra)


def _quote_name(name: str) -> str:
    return quote(name, safe="/")


def _meta_params(metadata: Mapping[str, Any] | None) -> _Params:
    # Values are sent as JSON so that "42" (a string) and 42 (a number) stay apart.
    return [("meta", f"{k}={json.dumps(v)}") for k, v in (metadata or {}).items()]


class DatalakeClient:
    """The datalake service's API, called with one bearer token (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        settings: HttpClientSettings | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._owns_http = http is None
        self._http = http or make_http_client(settings or HttpClientSettings(read_timeout=300.0))

    def with_token(self, token: str) -> DatalakeClient:
        """A client acting with ``token`` that shares this client's connection pool."""
        return DatalakeClient(self.base_url, token, http=self._http)

    async def aclose(self) -> None:
        """Close the connection pool if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> DatalakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ plumbing

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers.update(extra or {})
        return headers

    async def _json(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        json_body: Any = None,
        params: Any = None,
    ) -> Any:
        async with backend_call("datalake", operation):
            response = await self._http.request(
                method,
                self.base_url + path,
                json=json_body,
                params=params,
                headers=self._headers(),
            )
        await raise_for_problem(response, operation)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # ------------------------------------------------------------------ scopes

    async def my_scope(self) -> str:
        """The caller's own scope (``GET /scopes/mine``; created on first use)."""
        data = await self._json("GET", "/scopes/mine", "my_scope")
        return str(data["scope"])

    # ------------------------------------------------------------------ DIDs

    async def get_did(self, scope: str, name: str) -> Did:
        """One DID with its metadata."""
        data = await self._json("GET", f"/dids/{scope}/{_quote_name(name)}", "get_did")
        return Did.model_validate(data)

    async def list_dids(
        self,
        scope: str,
        *,
        name: str = "*",
        did_type: DidType | Literal["all"] = "all",
        metadata: Mapping[str, Any] | None = None,
        conditions: Sequence[str] = (),
    ) -> AsyncIterator[Did]:
        """Every matching DID of a scope, streamed (flat memory however many match).

        ``name`` takes ``*`` wildcards; ``metadata`` keys must equal the given values;
        ``conditions`` are ``key<op>value`` strings as the datalake's ``meta`` parameter takes.
        """
        params: _Params = [("name", name), ("type", did_type)]
        params += _meta_params(metadata)
        params += [("meta", condition) for condition in conditions]
        async for item in self._ndjson(f"/dids/{scope}", params, "list_dids"):
            yield Did.model_validate(item)

    async def list_content(
        self, scope: str, name: str, *, recursive: bool = False
    ) -> AsyncIterator[Did]:
        """The DIDs attached to a dataset or container (all levels with ``recursive``)."""
        params: _Params = [("recursive", "true" if recursive else "false")]
        path = f"/dids/{scope}/{_quote_name(name)}/content"
        async for item in self._ndjson(path, params, "list_content"):
            yield Did.model_validate(item)

    async def _ndjson(
        self, path: str, params: _Params, operation: str
    ) -> AsyncIterator[dict[str, Any]]:
        async with backend_call("datalake", operation):
            request = self._http.build_request(
                "GET",
                self.base_url + path,
                params=params,
                headers=self._headers({"Accept": NDJSON}),
            )
            response = await self._http.send(request, stream=True)
            try:
                await raise_for_problem(response, operation)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield json.loads(line)
            finally:
                await response.aclose()

    async def create_dataset(
        self, scope: str, name: str, *, metadata: Mapping[str, Any] | None = None
    ) -> Did:
        """Create an (open) dataset in ``scope``."""
        return await self._create(scope, name, "dataset", metadata)

    async def create_container(
        self, scope: str, name: str, *, metadata: Mapping[str, Any] | None = None
    ) -> Did:
        """Create a container in ``scope``."""
        return await self._create(scope, name, "container", metadata)

    async def _create(
        self, scope: str, name: str, did_type: DidType, metadata: Mapping[str, Any] | None
    ) -> Did:
        body = {"name": name, "type": did_type, "metadata": dict(metadata or {})}
        data = await self._json("POST", f"/dids/{scope}", f"create_{did_type}", json_body=body)
        return Did.model_validate(data)

    async def attach(self, scope: str, name: str, dids: Sequence[str | DidRef]) -> None:
        """Attach DIDs (``"scope:name"``) to the dataset/container ``scope:name``."""
        body = {"dids": [str(DidRef.parse(d)) for d in dids]}
        await self._json(
            "POST", f"/dids/{scope}/{_quote_name(name)}/attach", "attach", json_body=body
        )

    async def detach(self, scope: str, name: str, dids: Sequence[str | DidRef]) -> None:
        """Detach DIDs from the dataset/container ``scope:name``."""
        body = {"dids": [str(DidRef.parse(d)) for d in dids]}
        await self._json(
            "POST", f"/dids/{scope}/{_quote_name(name)}/detach", "detach", json_body=body
        )

    async def set_metadata(self, scope: str, name: str, metadata: Mapping[str, Any]) -> None:
        """Set metadata keys on one DID (other keys are left as they are)."""
        body = {"metadata": dict(metadata)}
        await self._json(
            "POST", f"/dids/{scope}/{_quote_name(name)}/metadata", "set_metadata", json_body=body
        )

    async def resolve(
        self, dids: Sequence[str | DidRef], *, rse_expression: str | None = None
    ) -> list[ResolvedFile]:
        """The files behind DIDs (files, datasets, containers) with checksums and replicas.

        Replicas on RSEs matching ``rse_expression`` come first and are marked ``preferred``.
        """
        body = {"dids": [str(DidRef.parse(d)) for d in dids], "rse_expression": rse_expression}
        data = await self._json("POST", "/resolve", "resolve", json_body=body)
        return [ResolvedFile.model_validate(f) for f in data["files"]]

    # ------------------------------------------------------------------ bytes

    async def upload(
        self,
        scope: str,
        name: str,
        content: AsyncIterable[bytes] | bytes,
        *,
        rse: str | None = None,
        md5: str | None = None,
        size: int | None = None,
        dataset: str | DidRef | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> UploadedFile:
        """Stream a file into the Data Lake and register it.

        ``md5`` (hex), when known up front, is sent as ``Content-MD5`` and the service refuses
        the upload (422, nothing registered) if the bytes differ; for ``bytes`` content it is
        computed here. Whatever was given, the md5 of the bytes actually sent is compared with
        the service's answer. ``size`` sets Content-Length (otherwise chunked encoding).
        """
        sent_md5 = hashlib.md5(usedforsecurity=False)
        sent_adler = 1
        sent_bytes = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent_adler, sent_bytes
            if isinstance(content, bytes | bytearray | memoryview):
                view = memoryview(content)
                for start in range(0, len(view), DEFAULT_CHUNK):
                    chunk = bytes(view[start : start + DEFAULT_CHUNK])
                    sent_md5.update(chunk)
                    sent_adler = zlib.adler32(chunk, sent_adler)
                    sent_bytes += len(chunk)
                    yield chunk
                return
            async for chunk in content:
                sent_md5.update(chunk)
                sent_adler = zlib.adler32(chunk, sent_adler)
                sent_bytes += len(chunk)
                yield chunk

        headers = self._headers({"Content-Type": "application/octet-stream"})
        if isinstance(content, bytes | bytearray | memoryview):
            md5 = md5 or hashlib.md5(content, usedforsecurity=False).hexdigest()
            size = len(content)
        if md5:
            headers["Content-MD5"] = base64.b64encode(bytes.fromhex(md5)).decode("ascii")
        if size is not None:
            headers["Content-Length"] = str(size)
        params: _Params = []
        if rse:
            params.append(("rse", rse))
        if dataset:
            params.append(("dataset", str(DidRef.parse(dataset))))
        params += _meta_params(metadata)
        async with backend_call("datalake", "upload"):
            response = await self._http.put(
                f"{self.base_url}/files/{scope}/{_quote_name(name)}",
                content=body(),
                params=params,
                headers=headers,
            )
        await raise_for_problem(response, "upload")
        result = UploadedFile.model_validate(response.json())
        if sent_bytes and (
            result.md5 != sent_md5.hexdigest() or result.adler32 != f"{sent_adler:08x}"
        ):
            raise BadGatewayError(
                f"the datalake registered {scope}:{name} with checksums that differ from the "
                "bytes sent"
            )
        return result

    @asynccontextmanager
    async def download(
        self, scope: str, name: str, *, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[Download]:
        """Open a file for streaming: ``async with dl.download(s, n) as d: d.iter_bytes()``.

        ``offset``/``length`` ask for a byte range (HTTP Range); a full read is
        checksum-verified by the service while it streams.
        """
        headers = self._headers({"Accept": "application/octet-stream, application/problem+json"})
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        async with backend_call("datalake", "download"):
            request = self._http.build_request(
                "GET", f"{self.base_url}/files/{scope}/{_quote_name(name)}", headers=headers
            )
            response = await self._http.send(request, stream=True)
        try:
            await raise_for_problem(response, "download")
            yield Download(response)
        finally:
            await response.aclose()


__all__ = [
    "DatalakeClient",
    "Did",
    "DidRef",
    "DidType",
    "Download",
    "QuotaRefusedError",
    "ResolvedFile",
    "ResolvedReplica",
    "UploadedFile",
    "raise_for_problem",
]
