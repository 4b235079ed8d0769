"""ZenodoRecordsSource over Zenodo's REST records API (async httpx)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from vre_catalogue.backends.base import RecordsPage
from vre_catalogue.config import ZenodoSourceSettings
from vre_common.errors import BackendUnavailableError, BadGatewayError
from vre_common.http import backend_call, make_http_client

BACKEND = "zenodo"


class HttpZenodoRecordsSource:
    """``GET {url}/api/records`` with the page-size cap that applies to our credentials.

    Files are only fetched from the configured Zenodo origin (a record cannot make the
    service fetch arbitrary URLs), and the token is only ever sent there.
    """

    def __init__(
        self, settings: ZenodoSourceSettings, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self._settings = settings
        base = settings.url.rstrip("/")
        self._origin = _origin(base)
        headers = {"Accept": "application/json"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._client = client or make_http_client(settings.http, base_url=base, headers=headers)

    @property
    def page_size(self) -> int:
        return self._settings.effective_page_size

    @property
    def result_window(self) -> int:
        return self._settings.result_window

    async def search(self, *, community: str, query: str, page: int, size: int) -> RecordsPage:
        params: dict[str, str | int] = {
            "communities": community,
            "q": query,
            "size": min(size, self.page_size),
            "page": page,
            "sort": self._settings.sort,
        }
        if self._settings.record_type:
            params["type"] = self._settings.record_type
        async with backend_call(BACKEND, "records"):
            response = await self._client.get("/api/records", params=params)
        data = _json(response, "records search")
        hits = data.get("hits")
        if not isinstance(hits, dict) or not isinstance(hits.get("hits"), list):
            raise BadGatewayError("Zenodo answered a records search without hits")
        total = hits.get("total", 0)
        if isinstance(total, dict):  # {"value": n, "relation": "eq"} on some InvenioRDM versions
            total = total.get("value", 0)
        records = [h for h in hits["hits"] if isinstance(h, dict)]
        return RecordsPage(total=int(total), hits=records)

    async def fetch_file(self, url: str, *, max_bytes: int) -> bytes:
        if _origin(url) != self._origin:
            raise BadGatewayError(f"refusing to fetch a file outside {self._origin}")
        async with backend_call(BACKEND, "file"), self._client.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                _json(response, "file download")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise BadGatewayError(f"the file at {url} is larger than {max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        await self._client.aclose()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _json(response: httpx.Response, operation: str) -> dict[str, Any]:
    status = response.status_code
    if status == 429 or status >= 500:
        retry = response.headers.get("Retry-After", "30")
        raise BackendUnavailableError(
            f"Zenodo answered {status} to a {operation}",
            retry_after=int(retry) if retry.isdigit() else 30,
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise BadGatewayError(f"Zenodo sent no JSON for a {operation} ({status})") from exc
    if status != 200:
        message = data.get("message") if isinstance(data, dict) else None
        raise BadGatewayError(f"Zenodo refused a {operation} ({status}): {message or data}")
    if not isinstance(data, dict):
        raise BadGatewayError(f"Zenodo sent unexpected JSON for a {operation}")
    return data
