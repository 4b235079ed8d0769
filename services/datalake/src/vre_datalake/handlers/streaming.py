"""NDJSON streaming of model listings (flat memory however many items)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Send

from vre_common.errors import VreError
from vre_datalake.handlers.deps import NDJSON

_BATCH = 64 * 1024
log = structlog.get_logger("vre.datalake.stream")


class AbortableStreamingResponse(StreamingResponse):
    """A streaming response that a failure after the headers ends by cutting the connection.

    Once the status line is out, an error (a replica failing its checksum, storage or Rucio
    going away) cannot become a problem document; the response is left incomplete instead,
    so the server closes the connection and the client sees a truncated body (fewer bytes
    than Content-Length, or no final chunk) rather than a silently wrong file.
    """

    async def stream_response(self, send: Send) -> None:
        """Stream; on our errors stop without completing the response."""
        try:
            await super().stream_response(send)
        except VreError as exc:
            log.warning("stream_aborted", error=type(exc).__name__, detail=exc.detail)


def ndjson_response(items: AsyncIterator[BaseModel]) -> StreamingResponse:
    """One JSON document per line, written in batches of about 64 KiB."""

    async def lines() -> AsyncIterator[bytes]:
        buffer = bytearray()
        async for item in items:
            buffer += item.model_dump_json().encode()
            buffer += b"\n"
            if len(buffer) >= _BATCH:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)

    return AbortableStreamingResponse(lines(), media_type=NDJSON)


def ndjson_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI content entry for an NDJSON alternative of a listing."""
    return {NDJSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
