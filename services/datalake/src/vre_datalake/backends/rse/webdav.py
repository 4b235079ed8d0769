"""WebDAV storage (``https://``/``davs://`` PFNs): streaming PUT/GET/MOVE/DELETE with httpx.

Real Data Lake sites (dCache, EOS, StoRM) and the test server (WsgiDAV under cheroot) take a
bearer token. Parent folders are created with MKCOL when the parent is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx

from vre_common.http import backend_call
from vre_datalake.errors import StorageError

_OK_WRITE = {200, 201, 204}


def http_url(url: str) -> str:
    """``davs://`` → ``https://`` (``dav://`` → ``http://``); others unchanged."""
    parts = urlsplit(url)
    scheme = {"davs": "https", "dav": "http"}.get(parts.scheme, parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme))


class WebdavStore:
    """A WebDAV endpoint reached with one pooled async client."""

    schemes: tuple[str, ...] = ("https", "davs", "http", "dav")

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        chunk_size: int = 1 << 20,
        default_token: str | None = None,
    ) -> None:
        self._client = client
        self._chunk_size = chunk_size
        self._default_token = default_token

    def _headers(self, token: str | None, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        bearer = token or self._default_token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return headers

    async def _ensure_parent(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        segments = parts.path.split("/")[1:-1]
        parent = urlunsplit(parts._replace(path="/" + "/".join(segments) + "/"))
        probe = await self._client.request(
            "PROPFIND", parent, headers=self._headers(token, Depth="0")
        )
        if probe.status_code in (200, 207):
            return
        path = ""
        for segment in segments:
            path += "/" + segment
            folder = urlunsplit(parts._replace(path=path + "/"))
            response = await self._client.request("MKCOL", folder, headers=self._headers(token))
            # 405: exists already; 301: some servers redirect the folder URL
            if response.status_code not in (200, 201, 301, 405):
                raise StorageError(f"MKCOL answered {response.status_code} on the storage")

    async def write(
        self, url: str, chunks: AsyncIterator[bytes], *, token: str | None = None
    ) -> None:
        """Streaming PUT (chunked): the body is never held in memory."""
        target = http_url(url)
        async with backend_call("storage", "webdav_put"):
            await self._ensure_parent(target, token)
            response = await self._client.put(
                target,
                content=chunks,
                headers=self._headers(token, **{"Content-Type": "application/octet-stream"}),
            )
        if response.status_code not in _OK_WRITE:
            raise StorageError(f"the storage answered {response.status_code} to PUT")

    async def move(self, source: str, destination: str, *, token: str | None = None) -> None:
        """MOVE with Overwrite (201 or 204 are both success)."""
        async with backend_call("storage", "webdav_move"):
            response = await self._client.request(
                "MOVE",
                http_url(source),
                headers=self._headers(token, Destination=http_url(destination), Overwrite="T"),
            )
        if response.status_code not in _OK_WRITE:
            raise StorageError(f"the storage answered {response.status_code} to MOVE")

    async def delete(self, url: str, *, token: str | None = None) -> None:
        """DELETE; 404 is fine."""
        async with backend_call("storage", "webdav_delete"):
            response = await self._client.delete(http_url(url), headers=self._headers(token))
        if response.status_code not in (*_OK_WRITE, 404):
            raise StorageError(f"the storage answered {response.status_code} to DELETE")

    async def size(self, url: str, *, token: str | None = None) -> int | None:
        """HEAD → Content-Length; None on 404."""
        async with backend_call("storage", "webdav_head"):
            response = await self._client.head(http_url(url), headers=self._headers(token))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StorageError(f"the storage answered {response.status_code} to HEAD")
        length = response.headers.get("content-length")
        return int(length) if length is not None else None

    async def read(
        self,
        url: str,
        *,
        offset: int = 0,
        length: int | None = None,
        token: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Streaming GET, with a Range header for partial reads."""
        headers = self._headers(token)
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        async with backend_call("storage", "webdav_get"):
            request = self._client.build_request("GET", http_url(url), headers=headers)
            response = await self._client.send(request, stream=True)
            try:
                partial = "Range" in headers
                if response.status_code not in ((206, 200) if partial else (200,)):
                    raise StorageError(f"the storage answered {response.status_code} to GET")
                skip = offset if partial and response.status_code == 200 else 0
                remaining = length
                async for chunk in response.aiter_bytes(self._chunk_size):
                    if skip:  # the server ignored Range: drop the leading bytes ourselves
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk = chunk[skip:]  # noqa: PLW2901
                        skip = 0
                    if remaining is not None:
                        if remaining <= 0:
                            break
                        chunk = chunk[:remaining]  # noqa: PLW2901
                        remaining -= len(chunk)
                    yield chunk
            finally:
                await response.aclose()
