"""File bytes: streaming upload and download."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from vre_common.problems import problem_responses
from vre_common.types import META_ASSIGNMENT_PATTERN
from vre_datalake.checksums import etag_for, expected_md5
from vre_datalake.errors import RangeNotSatisfiableError, UploadAbortedError
from vre_datalake.handlers.deps import CurrentActor, FileServiceDep, UploadServiceDep
from vre_datalake.handlers.fields import located
from vre_datalake.handlers.params import no_items, parse_metadata
from vre_datalake.handlers.paths import DidNamePath, ScopePath
from vre_datalake.handlers.streaming import AbortableStreamingResponse
from vre_datalake.models import UploadedFile
from vre_datalake.services.uploads import UploadRequest

router = APIRouter(tags=["files"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# The upload's fields the services name, and where the request carries them.
_UPLOAD_FIELDS = {"rse": ("query", "rse"), "dataset": ("query", "dataset")}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single ``bytes=`` range; None for the whole file.

    Multiple ranges and other units are ignored (the whole file is sent, as RFC 9110
    allows); an unsatisfiable range raises 416.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiableError(size)
        return max(0, size - count), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiableError(size)
    return start, min(end, size - 1)


async def request_body(request: Request) -> AsyncIterator[bytes]:
    """The raw body, chunk by chunk; a client that hangs up mid-body is an UploadAbortedError."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise UploadAbortedError("the client disconnected before the whole body arrived") from None


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The raw file (any size; streamed, never held in memory).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/files/{scope}/{name:path}",
    summary="Upload a file",
    description=(
        "Streams the raw body to an RSE while computing adler32 and md5, writes it under a "
        "temporary name, moves it into place and only then registers the replica in Rucio. "
        "Send `Content-MD5` (base64, RFC 1864) or `Digest: md5=…` to have the bytes checked: "
        "a mismatch is 422 and nothing is registered or left on the storage. Re-uploading "
        "the same content is 200 (`created: false`); other content under an existing DID is "
        "409. Optionally attach the file to a dataset (created if missing) and set metadata "
        "(`meta=key=value`, repeatable) in the same call."
    ),
    status_code=201,
    response_model=UploadedFile,
    responses={
        200: {"description": "The same content was registered already", "model": UploadedFile},
        **problem_responses(400, 401, 403, 404, 409, 422, 502, 503, 507),
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload_file(
    *,
    scope: ScopePath,
    name: DidNamePath,
    request: Request,
    response: Response,
    actor: CurrentActor,
    uploads: UploadServiceDep,
    rse: str | None = Query(default=None, description="Target RSE (default: configured)."),
    dataset: str | None = Query(default=None, description="`scope:name` of a dataset."),
    meta: list[str] = Query(
        default_factory=no_items,
        description="Metadata `key=value`.",
        json_schema_extra={"items": {"type": "string", "pattern": META_ASSIGNMENT_PATTERN}},
    ),
    content_md5: str | None = Header(default=None, description="base64 md5 of the body."),
    digest: str | None = Header(default=None, description="e.g. `md5=<base64>`."),
    content_length: int | None = Header(default=None, ge=0),
) -> UploadedFile:
    upload = UploadRequest(
        scope=scope,
        name=name,
        rse=rse,
        content_length=content_length,
        expected_md5=expected_md5(content_md5, digest),
        dataset=dataset,
        metadata=parse_metadata(meta),
    )
    with located(_UPLOAD_FIELDS):
        result = await uploads.upload(actor, upload, request_body(request))
    response.status_code = 201 if result.created else 200
    return result


@router.get(
    "/files/{scope}/{name:path}",
    summary="Download a file",
    description=(
        "Streams the file from a replica (`rse=` to choose one). Full reads are "
        "adler32-verified while streaming (a corrupt replica aborts the connection). "
        "Supports `Range: bytes=a-b` (206), `If-None-Match` (304); sends Content-Length, "
        "an ETag derived from the checksum and X-Checksum-Adler32/-Md5."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        206: {"description": "The requested byte range"},
        304: {"description": "Not modified (ETag matched)"},
        **problem_responses(401, 403, 404, 416, 422, 502, 503),
    },
)
async def download_file(
    *,
    scope: ScopePath,
    name: DidNamePath,
    actor: CurrentActor,
    files: FileServiceDep,
    rse: str | None = Query(default=None, description="Read from this RSE."),
    range_header: str | None = Header(default=None, alias="Range"),
    if_none_match: str | None = Header(default=None),
) -> Response:
    with located({"rse": ("query", "rse")}):
        file = await files.describe(actor, scope, name)
        info = file.did
        size = info.bytes or 0
        etag = etag_for(info.adler32, info.md5)
        headers = {"Accept-Ranges": "bytes"}
        if etag:
            headers["ETag"] = etag
        if info.adler32:
            headers["X-Checksum-Adler32"] = info.adler32
        if info.md5:
            headers["X-Checksum-Md5"] = info.md5
        if etag and if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)
        byte_range = parse_range(range_header, size)
        first, length = (
            (0, None) if byte_range is None else (byte_range[0], byte_range[1] - byte_range[0] + 1)
        )
        read = await files.read(file, rse=rse, first=first, length=length)
    headers["X-Replica-Rse"] = read.rse
    headers["Content-Disposition"] = f'attachment; filename="{name.rsplit("/", 1)[-1]}"'
    status = 200
    if byte_range is None:
        headers["Content-Length"] = str(size)
    else:
        status = 206
        headers["Content-Length"] = str(byte_range[1] - byte_range[0] + 1)
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{size}"
    return AbortableStreamingResponse(
        read.body, status_code=status, headers=headers, media_type="application/octet-stream"
    )
