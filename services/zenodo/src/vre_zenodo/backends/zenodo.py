"""ZenodoBackend: Zenodo's deposit and records REST API over async httpx.

Works against zenodo.org, sandbox.zenodo.org or any InvenioRDM serving the same (legacy
deposit) API. Translation at the edge:

- 400 ``{"status": 400, "message": "Validation error.", "errors": [{"field", "messages"}]}``
  → 422 :class:`ZenodoValidationError` with one ``{"loc", "msg"}`` per message;
- 401 → :class:`ZenodoTokenRejectedError` (re-register the token), or
  :class:`ZenodoTokenMissingError` when no token was sent;
- 403 → :class:`ZenodoForbiddenError`; 404/410 → the operation's not-found error;
- 429 → 429, 503 → 503 with Retry-After, 504 → 504, other 5xx → 502;
- transport failures → 503/504/502 through :func:`vre_common.http.backend_call`.

The caller's token goes only to the configured origin: a link Zenodo hands back that points
elsewhere (a file redirect, a CDN) is fetched without it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import TypeAdapter, ValidationError

from vre_common.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
)
from vre_common.http import backend_call, make_http_client
from vre_zenodo.backends.base import (
    BucketObject,
    RecordHits,
    RecordQuery,
    ZenodoDeposition,
    ZenodoFile,
    ZenodoRecord,
)
from vre_zenodo.config import ZenodoApiSettings
from vre_zenodo.errors import (
    TOKEN_HINT,
    ChecksumMismatchError,
    DepositionNotFoundError,
    RecordNotFoundError,
    ZenodoForbiddenError,
    ZenodoTokenMissingError,
    ZenodoTokenRejectedError,
    ZenodoValidationError,
)

BACKEND = "zenodo"
_DATETIME = TypeAdapter(datetime)
# Elasticsearch query strings treat an unescaped "/" as the start of a regular expression;
# Zenodo answers 400 to such a q.
_UNESCAPED_SLASH = re.compile(r"(?<!\\)/")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return _DATETIME.validate_python(value)
    except ValidationError:
        return None


def _md5(checksum: Any) -> str | None:
    """``md5:<hex>`` (records, buckets) or bare hex (deposition files) → hex."""
    if not isinstance(checksum, str) or not checksum:
        return None
    algo, sep, value = checksum.partition(":")
    if sep:
        return value.lower() if algo.lower() == "md5" else None
    return checksum.lower()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _license(value: Any) -> str | None:
    if isinstance(value, dict):
        return _str(value.get("id") or value.get("identifier") or value.get("title"))
    return _str(value)


def _field_errors(raw: Any) -> list[dict[str, Any]]:
    """Zenodo's ``errors`` list → our field errors (one per message)."""
    out: list[dict[str, Any]] = []
    if not isinstance(raw, list):
        return out
    for item in raw:
        if not isinstance(item, dict):
            continue
        field = str(item.get("field") or "")
        loc: list[str | int] = [int(p) if p.isdigit() else p for p in field.split(".") if p]
        if loc and loc[0] != "metadata" and field not in ("files", "files.enabled"):
            loc = ["metadata", *loc]
        messages = item.get("messages")
        if not isinstance(messages, list):
            messages = [item.get("message") or "invalid"]
        for message in messages:
            text = (
                "; ".join(f"{k}: {v}" for k, v in message.items())  # InvenioRDM nests them
                if isinstance(message, dict)
                else str(message)
            )
            out.append({"loc": loc or ["metadata"], "msg": text, "type": "zenodo"})
    return out


def parse_deposition(data: Any) -> ZenodoDeposition:
    """A deposition from Zenodo's JSON (tolerant of both old and new Zenodo)."""
    if not isinstance(data, dict) or "id" not in data:
        raise BadGatewayError("Zenodo answered something that is not a deposition")
    links = _dict(data.get("links"))
    metadata = _dict(data.get("metadata"))
    files = []
    for f in data.get("files") or []:
        if not isinstance(f, dict):
            continue
        flinks = _dict(f.get("links"))
        files.append(
            ZenodoFile(
                id=_str(f.get("id")),
                key=str(f.get("filename") or f.get("key") or ""),
                size=_int(f.get("filesize", f.get("size"))) or 0,
                md5=_md5(f.get("checksum")),
                url=_str(flinks.get("download") or flinks.get("self")),
            )
        )
    latest_draft = _str(links.get("latest_draft"))
    return ZenodoDeposition(
        id=int(data["id"]),
        record_id=_int(data.get("record_id")),
        concept_record_id=_int(data.get("conceptrecid")),
        state=str(data.get("state") or "unsubmitted"),
        submitted=bool(data.get("submitted", False)),
        doi=_str(data.get("doi")),
        concept_doi=_str(data.get("conceptdoi")),
        title=_str(data.get("title") or metadata.get("title")),
        metadata=metadata,
        bucket_url=_str(links.get("bucket")),
        html_url=_str(links.get("record_html") or links.get("html")),
        latest_draft_id=_int(latest_draft.rstrip("/").rsplit("/", 1)[-1]) if latest_draft else None,
        files=files,
        created=_when(data.get("created")),
        modified=_when(data.get("modified")),
    )


def parse_record(data: Any) -> ZenodoRecord:
    """A record from Zenodo's JSON (legacy serialization, as GET /api/records answers)."""
    if not isinstance(data, dict) or "id" not in data:
        raise BadGatewayError("Zenodo answered something that is not a record")
    md = _dict(data.get("metadata"))
    links = _dict(data.get("links"))
    files = []
    raw_files = data.get("files") or []
    if isinstance(raw_files, dict):  # InvenioRDM's {"entries": {...}} shape
        raw_files = list((raw_files.get("entries") or {}).values())
    for f in raw_files:
        if not isinstance(f, dict):
            continue
        flinks = _dict(f.get("links"))
        key = str(f.get("key") or f.get("filename") or "")
        files.append(
            ZenodoFile(
                id=_str(f.get("id") or f.get("file_id")),
                key=key,
                size=_int(f.get("size", f.get("filesize"))) or 0,
                md5=_md5(f.get("checksum")),
                url=_str(flinks.get("content") or flinks.get("self") or flinks.get("download")),
            )
        )
    resource_type = md.get("resource_type")
    communities = []
    for c in md.get("communities") or []:
        if isinstance(c, dict):
            ident = c.get("id") or c.get("identifier")
            if ident:
                communities.append(str(ident))
    keywords = [str(k) for k in md.get("keywords") or [] if isinstance(k, str | int | float)]
    return ZenodoRecord(
        id=int(data["id"]),
        concept_record_id=_int(data.get("conceptrecid")),
        doi=_str(data.get("doi") or md.get("doi")),
        concept_doi=_str(data.get("conceptdoi")),
        title=str(md.get("title") or data.get("title") or ""),
        description=_str(md.get("description")),
        version=_str(md.get("version")),
        license=_license(md.get("license")),
        resource_type=_str(resource_type.get("type"))
        if isinstance(resource_type, dict)
        else _str(resource_type),
        publication_date=_str(md.get("publication_date")),
        access_right=_str(md.get("access_right")),
        creators=[c for c in md.get("creators") or [] if isinstance(c, dict)],
        keywords=keywords,
        communities=communities,
        html_url=_str(links.get("html") or links.get("self_html")),
        files=files,
        created=_when(data.get("created")),
        updated=_when(data.get("updated") or data.get("modified")),
    )


def escape_query(q: str) -> str:
    """Escape the slashes Zenodo's query parser would read as a regular expression."""
    return _UNESCAPED_SLASH.sub(r"\\/", q)


class _RecordDownload:
    """An open download whose md5 and size are checked after the last chunk."""

    def __init__(self, response: httpx.Response, file: ZenodoFile, chunk_size: int) -> None:
        self._response = response
        self._file = file
        self._chunk_size = chunk_size
        length = response.headers.get("content-length")
        self.size: int | None = file.size or (int(length) if length and length.isdigit() else None)

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        async with backend_call(BACKEND, "download"):
            async for chunk in self._response.aiter_bytes(self._chunk_size):
                digest.update(chunk)
                received += len(chunk)
                yield chunk
        expected_md5 = self._file.md5
        if self._file.size and received != self._file.size:
            raise ChecksumMismatchError(
                f"Zenodo sent {received} bytes of {self._file.key!r}, its record says "
                f"{self._file.size}"
            )
        if expected_md5 and digest.hexdigest() != expected_md5:
            raise ChecksumMismatchError(
                f"the bytes Zenodo sent for {self._file.key!r} have md5 {digest.hexdigest()}, "
                f"its record says {expected_md5}"
            )


class ZenodoBackend:
    """Async client of one Zenodo (see the module docstring for the error translation)."""

    def __init__(
        self, settings: ZenodoApiSettings, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self._settings = settings
        self._api = settings.api
        self._origin = _origin(settings.url)
        self._owns_http = http is None
        self._http = http or make_http_client(settings.http, verify=settings.verify)
        self._transfer_timeout = httpx.Timeout(
            settings.transfer_read_timeout, connect=settings.http.connect_timeout
        )

    async def aclose(self) -> None:
        """Close the connection pool if this backend created it."""
        if self._owns_http:
            await self._http.aclose()

    @property
    def base_url(self) -> str:
        """The configured Zenodo base URL."""
        return self._settings.url

    def page_size_cap(self, token: str | None) -> int:
        """25 for anonymous searches, 100 with a token (Zenodo's documented caps)."""
        s = self._settings
        return s.authenticated_page_size if token else s.anonymous_page_size

    # ------------------------------------------------------------------ plumbing

    def _headers(self, token: str | None, url: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if token and _origin(url) == self._origin:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _call(
        self,
        method: str,
        url: str,
        operation: str,
        token: str | None,
        *,
        json_body: Any = None,
        params: Any = None,
        not_found: type[NotFoundError] = NotFoundError,
        what: str = "request",
        follow_redirects: bool = False,
    ) -> Any:
        async with backend_call(BACKEND, operation):
            response = await self._http.request(
                method,
                url,
                json=json_body,
                params=params,
                headers=self._headers(token, url),
                follow_redirects=follow_redirects,
            )
        raise_for_zenodo(response, operation, token is not None, not_found, what)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise BadGatewayError(f"Zenodo answered invalid JSON to {operation}") from exc

    def _deposition_url(self, deposition_id: int, action: str | None = None) -> str:
        url = f"{self._api}/deposit/depositions/{int(deposition_id)}"
        return f"{url}/actions/{action}" if action else url

    # ------------------------------------------------------------------ depositions

    async def create_deposition(
        self, token: str, metadata: Mapping[str, Any] | None = None
    ) -> ZenodoDeposition:
        """A new empty draft (POST /api/deposit/depositions)."""
        body: dict[str, Any] = {"metadata": dict(metadata)} if metadata else {}
        data = await self._call(
            "POST",
            f"{self._api}/deposit/depositions",
            "create_deposition",
            token,
            json_body=body,
            what="deposition metadata",
        )
        return parse_deposition(data)

    async def get_deposition(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """One deposition (GET /api/deposit/depositions/{id})."""
        data = await self._call(
            "GET",
            self._deposition_url(deposition_id),
            "get_deposition",
            token,
            not_found=DepositionNotFoundError,
        )
        return parse_deposition(data)

    async def list_depositions(
        self, token: str, *, page: int = 1, size: int = 25
    ) -> list[ZenodoDeposition]:
        """The token owner's depositions (GET /api/deposit/depositions)."""
        data = await self._call(
            "GET",
            f"{self._api}/deposit/depositions",
            "list_depositions",
            token,
            params={"page": page, "size": size, "sort": "mostrecent"},
        )
        if not isinstance(data, list):
            raise BadGatewayError("Zenodo answered something that is not a list of depositions")
        return [parse_deposition(d) for d in data]

    async def update_metadata(
        self, token: str, deposition_id: int, metadata: Mapping[str, Any]
    ) -> ZenodoDeposition:
        """Replace a draft's metadata (PUT /api/deposit/depositions/{id})."""
        data = await self._call(
            "PUT",
            self._deposition_url(deposition_id),
            "update_metadata",
            token,
            json_body={"metadata": dict(metadata)},
            not_found=DepositionNotFoundError,
            what="deposition metadata",
        )
        return parse_deposition(data)

    async def upload_file(
        self,
        token: str,
        bucket_url: str,
        filename: str,
        content: AsyncIterable[bytes],
        *,
        size: int,
    ) -> BucketObject:
        """Stream ``content`` to ``PUT {bucket}/{filename}`` (never whole in memory)."""
        if _origin(bucket_url) != self._origin:
            raise BadGatewayError(
                "Zenodo named a bucket outside its own address; the token is not sent there"
            )
        url = f"{bucket_url.rstrip('/')}/{quote(filename, safe='')}"
        headers = self._headers(token, url)
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(size)
        async with backend_call(BACKEND, "upload_file"):
            response = await self._http.put(
                url, content=content, headers=headers, timeout=self._transfer_timeout
            )
        raise_for_zenodo(response, "upload_file", True, DepositionNotFoundError, "file")
        try:
            data = response.json()
            return BucketObject(
                key=str(data.get("key") or filename),
                size=int(data["size"]),
                md5=_md5(data.get("checksum")) or "",
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadGatewayError("Zenodo answered a file upload with an unusable body") from exc

    async def delete_file(self, token: str, bucket_url: str, filename: str) -> None:
        """DELETE {bucket}/{filename}; a file that is already gone is fine."""
        url = f"{bucket_url.rstrip('/')}/{quote(filename, safe='')}"
        try:
            await self._call("DELETE", url, "delete_file", token)
        except NotFoundError:
            return

    async def publish(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """POST …/actions/publish: the answer carries ``doi`` and ``record_id``."""
        data = await self._call(
            "POST",
            self._deposition_url(deposition_id, "publish"),
            "publish",
            token,
            not_found=DepositionNotFoundError,
            what="publication",
        )
        return parse_deposition(data)

    async def new_version(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """POST …/actions/newversion, returning the new draft in either answer shape.

        New Zenodo answers 201 with the new draft itself (files of the previous version
        already in it); old Zenodo answered with the parent deposition and the draft in
        ``links.latest_draft``, which is fetched.
        """
        data = await self._call(
            "POST",
            self._deposition_url(deposition_id, "newversion"),
            "new_version",
            token,
            not_found=DepositionNotFoundError,
            what="new version",
        )
        answer = parse_deposition(data)
        if answer.latest_draft_id is not None and answer.latest_draft_id != answer.id:
            return await self.get_deposition(token, answer.latest_draft_id)
        if answer.submitted and answer.id == deposition_id:
            raise BadGatewayError("Zenodo answered newversion without naming the new draft")
        return answer

    async def edit(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """POST …/actions/edit."""
        data = await self._call(
            "POST",
            self._deposition_url(deposition_id, "edit"),
            "edit",
            token,
            not_found=DepositionNotFoundError,
        )
        return parse_deposition(data)

    async def discard(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """POST …/actions/discard."""
        data = await self._call(
            "POST",
            self._deposition_url(deposition_id, "discard"),
            "discard",
            token,
            not_found=DepositionNotFoundError,
        )
        return parse_deposition(data)

    async def delete_deposition(self, token: str, deposition_id: int) -> None:
        """DELETE /api/deposit/depositions/{id} (unpublished drafts only)."""
        await self._call(
            "DELETE",
            self._deposition_url(deposition_id),
            "delete_deposition",
            token,
            not_found=DepositionNotFoundError,
        )

    # ------------------------------------------------------------------ records

    async def get_record(self, record_id: int, token: str | None = None) -> ZenodoRecord:
        """GET /api/records/{id}."""
        data = await self._call(
            "GET",
            f"{self._api}/records/{int(record_id)}",
            "get_record",
            token,
            not_found=RecordNotFoundError,
            follow_redirects=True,  # a concept record id redirects to its latest version
        )
        return parse_record(data)

    async def search_records(self, query: RecordQuery, token: str | None = None) -> RecordHits:
        """One page of GET /api/records, the page size capped at 25 (anonymous) / 100."""
        size = min(query.size, self.page_size_cap(token))
        params: list[tuple[str, str | int]] = [("page", query.page), ("size", size)]
        if query.q:
            params.append(("q", escape_query(query.q)))
        params += [("communities", c) for c in query.communities]
        if query.type:
            params.append(("type", query.type))
        if query.sort:
            params.append(("sort", query.sort))
        data = await self._call(
            "GET", f"{self._api}/records", "search_records", token, params=params, what="search"
        )
        try:
            hits = data["hits"]
            total = hits.get("total", 0)
            if isinstance(total, dict):  # Elasticsearch 7 shape
                total = total.get("value", 0)
            records = [parse_record(h) for h in hits.get("hits") or []]
        except (TypeError, KeyError, AttributeError) as exc:
            raise BadGatewayError("Zenodo answered a search with an unusable body") from exc
        links = _dict(data.get("links"))
        has_next = bool(links.get("next")) or query.page * size < int(total)
        has_next = has_next and query.page * size < self._settings.result_window
        return RecordHits(
            hits=records, total=int(total), page=query.page, size=size, has_next=has_next
        )

    async def iter_records(
        self, query: RecordQuery, token: str | None = None
    ) -> AsyncIterator[ZenodoRecord]:
        """Every hit of a search, page by page, at the largest page size allowed."""
        page_query = query.model_copy(update={"page": 1, "size": self.page_size_cap(token)})
        while True:
            result = await self.search_records(page_query, token)
            for record in result.hits:
                yield record
            if not result.has_next or not result.hits:
                return
            page_query = page_query.model_copy(update={"page": page_query.page + 1})

    @asynccontextmanager
    async def download(
        self, file: ZenodoFile, token: str | None = None
    ) -> AsyncIterator[_RecordDownload]:
        """Open a record file (``links.self``) for streaming; md5 and size checked at the end."""
        if not file.url:
            raise BadGatewayError(f"Zenodo gave no download link for {file.key!r}")
        headers = self._headers(token, file.url)
        headers["Accept"] = "*/*"
        async with backend_call(BACKEND, "download"):
            request = self._http.build_request(
                "GET", file.url, headers=headers, timeout=self._transfer_timeout
            )
            # Redirects (to a storage host) are followed; httpx drops the Authorization
            # header when one leaves the origin.
            response = await self._http.send(request, stream=True, follow_redirects=True)
        try:
            if not response.is_success:
                await response.aread()
                raise_for_zenodo(
                    response, "download", token is not None, RecordNotFoundError, "download"
                )
            yield _RecordDownload(response, file, self._settings.chunk_size)
        finally:
            await response.aclose()


_NOUNS: dict[type[NotFoundError], str] = {
    RecordNotFoundError: "record or file",
    DepositionNotFoundError: "deposition",
}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def raise_for_zenodo(
    response: httpx.Response,
    operation: str,
    token_sent: bool,
    not_found: type[NotFoundError] = NotFoundError,
    what: str = "request",
) -> None:
    """Raise our error for a Zenodo error answer (see the module docstring); no-op on 2xx."""
    if response.is_success:
        return
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or body.get("detail") or response.reason_phrase or "")
    if status in (400, 422):
        errors = _field_errors(body.get("errors"))
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        detail = f"Zenodo refused the {what}: {message}" + (f" ({where})" if where else "")
        raise ZenodoValidationError(detail, errors=errors or None)
    if status == 401:
        if token_sent:
            raise ZenodoTokenRejectedError(
                f"Zenodo ({operation}) does not accept your personal token: it is wrong, "
                f"expired or revoked; {TOKEN_HINT}"
            )
        raise ZenodoTokenMissingError(
            f"Zenodo needs a personal token for this ({operation}); {TOKEN_HINT}"
        )
    if status == 403:
        raise ZenodoForbiddenError(
            f"Zenodo refused {operation}: {message or 'forbidden'} (the token needs the scopes "
            "deposit:write and deposit:actions, and the deposition must be yours)"
        )
    if status in (404, 410):
        noun = _NOUNS.get(not_found, "object")
        gone = " any more" if status == 410 else ""
        raise not_found(f"Zenodo has no such {noun}{gone} ({operation})")
    if status == 409:
        raise ConflictError(f"Zenodo refused {operation}: {message or 'conflict'}")
    if status == 413:
        raise PayloadTooLargeError(f"Zenodo refused {operation}: {message or 'too large'}")
    _raise_unavailable(response, operation)


def _raise_unavailable(response: httpx.Response, operation: str) -> None:
    """429, 503 and 504 with their Retry-After; any other status is a 502."""
    status = response.status_code
    retry = response.headers.get("retry-after", "")
    if status == 429:
        raise RateLimitedError(
            f"Zenodo rate-limits this account ({operation}); retry later",
            retry_after=int(retry) if retry.isdigit() else 60,
        )
    if status == 503:
        raise BackendUnavailableError(
            f"Zenodo is unavailable ({operation})",
            retry_after=int(retry) if retry.isdigit() else 30,
        )
    if status == 504:
        raise BackendTimeoutError(f"Zenodo timed out ({operation})")
    raise BadGatewayError(f"Zenodo answered {status} to {operation}")
