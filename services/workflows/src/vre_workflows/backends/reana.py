"""ReanaClient: one REANA server's REST API (reana_server.json, Swagger 2.0) over async httpx.

The user's token travels as ``?access_token=`` (REANA 0.9): it is added per request and never
appears in a log line or an error detail (URLs are scrubbed). REANA's error messages
(``{"message": ...}``) become our problems: a rejected token → 403 ``reana-token-rejected``,
an exceeded quota → 403 ``reana-quota-exceeded`` with REANA's text, 404 → 404, 400 → 422,
409 → 409, 5xx → 502; a REANA that cannot be reached → 503/504.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from vre_common.errors import BadGatewayError, ForbiddenError, VreError
from vre_common.http import backend_call, make_http_client
from vre_common.logging import scrub
from vre_workflows.config import ReanaServerSettings
from vre_workflows.errors import (
    ReanaNotFoundError,
    ReanaQuotaExceededError,
    ReanaRequestError,
    ReanaTokenRejectedError,
    RunStateError,
)

CHUNK = 1 << 20
_TOKEN_MESSAGES = ("token", "not signed in", "not logged in")


class ScrubTokensFilter(logging.Filter):
    """Masks ``access_token=…`` in records of a logger (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message if it carries a token; never drop the record."""
        message = record.getMessage()
        if "token" in message.lower():
            record.msg = scrub(message)
            record.args = ()
        return True


def protect_http_logs() -> None:
    """Install the filter on the HTTP client loggers once (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubTokensFilter) for f in logger.filters):
            logger.addFilter(ScrubTokensFilter())


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return scrub(response.text[:500]) or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return scrub(body["message"])
    return scrub(json.dumps(body)[:500])


def reana_error(response: httpx.Response, operation: str) -> VreError:
    """Translate a REANA error answer into our error."""
    status = response.status_code
    message = _message(response)
    if status == 403 and message.lower().startswith("user quota exceeded"):
        return ReanaQuotaExceededError(f"REANA: {message}")
    if status in (401, 403) and any(m in message.lower() for m in _TOKEN_MESSAGES):
        return ReanaTokenRejectedError(
            f"REANA refused the registered token ({message}); register a valid one with "
            "PUT /credentials/reana"
        )
    plain: dict[int, type[VreError]] = {
        403: ForbiddenError,
        404: ReanaNotFoundError,
        409: RunStateError,
    }
    if status in plain:
        return plain[status](f"REANA: {message}")
    if status in (400, 422):
        return ReanaRequestError(f"REANA refused {operation}: {message}")
    return BadGatewayError(f"REANA answered {status} to {operation}: {message}")


class ReanaClient:
    """Async client of one REANA server; every method takes the user's REANA token."""

    def __init__(self, name: str, settings: ReanaServerSettings) -> None:
        protect_http_logs()
        self.name = name
        self.url = settings.url
        self._http = make_http_client(settings.http, base_url=settings.url, verify=settings.verify)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        token: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        query = {**(params or {}), "access_token": token}
        async with backend_call("reana", operation):
            response = await self._http.request(
                method, path, params=query, json=json_body, content=content, headers=headers
            )
        if response.status_code not in ok:
            raise reana_error(response, operation)
        try:
            return response.json()
        except ValueError as exc:
            raise BadGatewayError(
                f"REANA answered {operation} with a body that is not JSON"
            ) from exc

    async def you(self, token: str) -> dict[str, Any]:
        """``GET /api/you``: who the token is, and the quota."""
        data: dict[str, Any] = await self._call("GET", "/api/you", "get_you", token)
        return data

    async def create(self, token: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/workflows``: create a workflow; returns workflow_id and workflow_name."""
        data: dict[str, Any] = await self._call(
            "POST",
            "/api/workflows",
            "create_workflow",
            token,
            params={"workflow_name": name},
            json_body=spec,
            ok=(201, 200),
        )
        if not isinstance(data.get("workflow_id"), str):
            raise BadGatewayError("REANA created a workflow without a workflow_id")
        return data

    async def upload(self, token: str, workflow_id: str, file_name: str, path: Path) -> None:
        """``POST /api/workflows/{id}/workspace?file_name=…``, streamed from ``path``."""

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as handle:
                while chunk := await handle.read(CHUNK):
                    yield chunk

        size = (await anyio.Path(path).stat()).st_size
        await self._call(
            "POST",
            f"/api/workflows/{quote(workflow_id, safe='')}/workspace",
            "upload_file",
            token,
            params={"file_name": file_name},
            content=chunks(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )

    async def start(
        self, token: str, workflow_id: str, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """``POST /api/workflows/{id}/start`` with input parameters."""
        data: dict[str, Any] = await self._call(
            "POST",
            f"/api/workflows/{quote(workflow_id, safe='')}/start",
            "start_workflow",
            token,
            json_body={"input_parameters": parameters, "operational_options": {}},
        )
        return data

    async def status(self, token: str, workflow_id: str) -> dict[str, Any]:
        """``GET /api/workflows/{id}/status``."""
        data: dict[str, Any] = await self._call(
            "GET",
            f"/api/workflows/{quote(workflow_id, safe='')}/status",
            "get_workflow_status",
            token,
        )
        return data

    async def logs(self, token: str, workflow_id: str) -> dict[str, Any]:
        """``GET /api/workflows/{id}/logs``; the JSON-encoded ``logs`` string decoded."""
        data = await self._call(
            "GET", f"/api/workflows/{quote(workflow_id, safe='')}/logs", "get_workflow_logs", token
        )
        raw = data.get("logs") if isinstance(data, dict) else None
        if not isinstance(raw, str) or not raw:
            return {}
        try:
            decoded = json.loads(raw)
        except ValueError:
            return {"workflow_logs": raw}
        return decoded if isinstance(decoded, dict) else {"workflow_logs": raw}

    async def files(self, token: str, workflow_id: str) -> list[dict[str, Any]]:
        """``GET /api/workflows/{id}/workspace``, every page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            data = await self._call(
                "GET",
                f"/api/workflows/{quote(workflow_id, safe='')}/workspace",
                "get_files",
                token,
                params={"page": page, "size": 500},
            )
            batch = data.get("items", []) if isinstance(data, dict) else []
            items.extend(i for i in batch if isinstance(i, dict))
            total = data.get("total") if isinstance(data, dict) else None
            if not batch or not isinstance(total, int) or len(items) >= total:
                return items
            page += 1

    @asynccontextmanager
    async def download(
        self, token: str, workflow_id: str, file_name: str
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """``GET /api/workflows/{id}/workspace/{file_name}``, streamed."""
        path = (
            f"/api/workflows/{quote(workflow_id, safe='')}/workspace/{quote(file_name, safe='/')}"
        )
        async with backend_call("reana", "download_file"):
            request = self._http.build_request("GET", path, params={"access_token": token})
            response = await self._http.send(request, stream=True)
        try:
            if response.status_code != 200:
                await response.aread()
                raise reana_error(response, "download_file")

            async def body() -> AsyncIterator[bytes]:
                async with backend_call("reana", "download_file"):
                    async for chunk in response.aiter_bytes(CHUNK):
                        yield chunk

            yield body()
        finally:
            await response.aclose()

    async def stop(self, token: str, workflow_id: str) -> None:
        """``PUT /api/workflows/{id}/status?status=stop``."""
        await self._call(
            "PUT",
            f"/api/workflows/{quote(workflow_id, safe='')}/status",
            "set_workflow_status",
            token,
            params={"status": "stop"},
            json_body={},
        )

    async def delete(self, token: str, workflow_id: str) -> None:
        """``PUT /api/workflows/{id}/status?status=deleted`` with the workspace."""
        await self._call(
            "PUT",
            f"/api/workflows/{quote(workflow_id, safe='')}/status",
            "set_workflow_status",
            token,
            params={"status": "deleted"},
            json_body={"workspace": True},
        )

    async def ping(self) -> None:
        """Readiness: ``GET /api/ping`` answers."""
        async with backend_call("reana", "ping"):
            response = await self._http.get("/api/ping")
        if response.status_code != 200:
            raise BadGatewayError(f"REANA {self.name} answered {response.status_code} to ping")


REANA_STATUS = {
    "created": "queued",
    "queued": "queued",
    "pending": "queued",
    "running": "running",
    "finished": "finished",
    "failed": "failed",
    "stopped": "cancelled",
    "deleted": "deleted",
}
"""REANA workflow statuses → ours."""
