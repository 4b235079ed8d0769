"""Reading request bodies the routes accept in more than one shape (YAML, JSON, multipart)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from vre_common.errors import BadRequestError, InvalidInputError, PayloadTooLargeError, VreError
from vre_workflows.models import RunCreate
from vre_workflows.services.runs import UploadedFile

MAX_SPEC_BYTES = 1 << 20
MAX_JSON_BYTES = 16 << 20
SPEC_MEDIA_TYPES = (
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
    "text/plain",
)


class UnsupportedMediaTypeError(VreError):
    """The body's media type is not one the route reads."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (without reading them all)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_spec(request: Request) -> bytes:
    """A reana.yaml sent as YAML or JSON text."""
    media = _media_type(request)
    if media and media not in SPEC_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            f"send the reana.yaml as one of {', '.join(SPEC_MEDIA_TYPES)} (got {media})"
        )
    body = await read_limited(request, MAX_SPEC_BYTES)
    if not body.strip():
        raise InvalidInputError(
            "the body is empty: send a reana.yaml",
            errors=[{"loc": ["body"], "msg": "empty", "type": "missing"}],
        )
    return body


def _run_create(data: Any, prefix: str) -> RunCreate:
    try:
        return RunCreate.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "loc": [prefix, *[p if isinstance(p, int) else str(p) for p in e["loc"]]],
                "msg": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        raise InvalidInputError(
            f"{len(errors)} problem(s) in the request: {where}", errors=errors
        ) from exc


async def read_submission(
    request: Request,
) -> tuple[RunCreate, list[UploadedFile], FormData | None]:
    """A run submission: JSON, or multipart with ``run`` (JSON), ``spec`` and ``files``.

    The caller closes the returned form (its spooled files) when done.
    """
    media = _media_type(request)
    if media == "multipart/form-data":
        form = await request.form(max_files=10_000, max_fields=100, max_part_size=MAX_JSON_BYTES)
        try:
            data: dict[str, Any] = {}
            raw = form.get("run")
            if isinstance(raw, UploadFile):
                raw = (await raw.read()).decode()
            if raw:
                try:
                    data = json.loads(raw)
                except ValueError as exc:
                    raise BadRequestError(f"the 'run' part is not JSON: {exc}") from exc
                if not isinstance(data, dict):
                    raise BadRequestError("the 'run' part must be a JSON object")
            spec = form.get("spec")
            if isinstance(spec, UploadFile):
                data["spec"] = (await spec.read()).decode(errors="replace")
            elif isinstance(spec, str) and spec:
                data["spec"] = spec
            body = _run_create(data, "run")
            uploads = []
            for item in form.getlist("files"):
                if not isinstance(item, UploadFile) or not item.filename:
                    raise InvalidInputError(
                        "every 'files' part must be a file with a file name (its workspace path)",
                        errors=[{"loc": ["files"], "msg": "not a file", "type": "value_error"}],
                    )
                uploads.append(UploadedFile(path=item.filename, file=item.file))
        except BaseException:
            await form.close()
            raise
        return body, uploads, form
    if media not in ("application/json", ""):
        raise UnsupportedMediaTypeError(
            f"send the run as application/json or multipart/form-data (got {media})"
        )
    raw_body = await read_limited(request, MAX_JSON_BYTES)
    try:
        data = json.loads(raw_body)
    except ValueError as exc:
        raise BadRequestError(f"the body is not JSON: {exc}") from exc
    return _run_create(data, "body"), [], None
