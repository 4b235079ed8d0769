"""NDJSON streaming of model listings (flat memory however many items)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from vre_datalake.handlers.deps import NDJSON

_BATCH = 64 * 1024


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

    return StreamingResponse(lines(), media_type=NDJSON)


def ndjson_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI content entry for an NDJSON alternative of a listing."""
    return {NDJSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
