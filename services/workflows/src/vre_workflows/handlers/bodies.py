"""Request bodies the routes accept in more than one shape (YAML, JSON, multipart, tar/zip)."""

from __future__ import annotations

import json
import tempfile
from typing import Any, BinaryIO

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from vre_common.errors import (
    BadRequestError,
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from vre_workflows.models import RunCreate
from vre_workflows.services.runs import UploadedFile
from vre_workflows.validation.files import (
    MAX_MEMBERS,
    MAX_UNPACKED_BYTES,
    WorkflowFiles,
    read_archive,
)

MAX_SPEC_BYTES = 1 << 20
MAX_JSON_BYTES = 16 << 20
MAX_ARCHIVE_BYTES = 256 << 20
ARCHIVE_MEDIA_TYPES = (
    "application/zip",
    "application/x-zip-compressed",
    "application/x-tar",
    "application/gzip",
    "application/x-gzip",
    "application/x-compressed-tar",
    "application/x-bzip2",
    "application/x-xz",
)
SPEC_MEDIA_TYPES = (
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
    "text/plain",
)


class _FormWithFiles(FormData):
    """A form whose ``close`` also drops the spooled members of an unpacked archive."""

    def __init__(self, form: FormData, files: WorkflowFiles) -> None:
        super().__init__(form.multi_items())
        self._files = files

    async def close(self) -> None:
        await super().close()
        self._files.close()


def _unsupported(media: str, accepted: tuple[str, ...], what: str) -> UnsupportedMediaTypeError:
    return UnsupportedMediaTypeError(
        f"send {what} as one of {', '.join(accepted)} (got {media})",
        extra={"accepted": list(accepted)},
        headers={"Accept-Post": ", ".join(accepted)},
    )


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


def _empty_spec(loc: str) -> InvalidInputError:
    return InvalidInputError(
        "the body is empty: send a reana.yaml",
        errors=[{"loc": [loc], "msg": "empty", "type": "missing"}],
    )


async def read_spec(request: Request) -> bytes:
    """A reana.yaml sent as YAML or JSON text."""
    media = _media_type(request)
    if media and media not in SPEC_MEDIA_TYPES:
        raise _unsupported(media, SPEC_MEDIA_TYPES, "the reana.yaml")
    body = await read_limited(request, MAX_SPEC_BYTES)
    if not body.strip():
        raise _empty_spec("body")
    return body


async def _spool_body(request: Request, limit: int) -> BinaryIO:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the archive is larger than {limit} bytes")
    spooled = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - returned
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"the archive is larger than {limit} bytes")
            spooled.write(chunk)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled  # type: ignore[return-value]


async def _archive_files(source: BinaryIO) -> WorkflowFiles:
    import asyncio

    return await asyncio.to_thread(
        read_archive, source, max_members=MAX_MEMBERS, max_bytes=MAX_UNPACKED_BYTES
    )


def _spec_from_files(files: WorkflowFiles, loc: str) -> bytes:
    found = files.pop_spec()
    if found is None:
        raise InvalidInputError(
            "no reana.yaml: send it as the `spec` part, or put reana.yaml (or reana.yml) at "
            "the top of the archive",
            errors=[{"loc": [loc], "msg": "reana.yaml missing", "type": "missing"}],
        )
    return found[1]


async def _form_files(form: FormData, files: WorkflowFiles) -> None:
    for item in form.getlist("files"):
        if not isinstance(item, UploadFile) or not item.filename:
            raise InvalidInputError(
                "every 'files' part must be a file with a file name (its workspace path)",
                errors=[{"loc": ["files"], "msg": "not a file", "type": "value_error"}],
            )
        files.add_stream(item.filename, item.file, loc=["files", item.filename])
    archives = form.getlist("archive")
    if len(archives) > 1:
        raise InvalidInputError(
            "send one `archive` part",
            errors=[{"loc": ["archive"], "msg": "more than one", "type": "archive"}],
        )
    for archive in archives:
        if not isinstance(archive, UploadFile):
            raise InvalidInputError(
                "the `archive` part must be a file (tar or zip)",
                errors=[{"loc": ["archive"], "msg": "not a file", "type": "archive"}],
            )
        unpacked = await _archive_files(archive.file)
        files._owned.extend(unpacked._owned)
        for path, stream in unpacked.streams.items():
            files.add_stream(path, stream, loc=["archive", path])


async def read_validation(request: Request) -> tuple[bytes, WorkflowFiles | None, FormData | None]:
    """A reana.yaml alone (YAML/JSON), with its files (multipart), or inside a tar/zip body.

    Multipart parts: ``spec`` (the reana.yaml, text or file), ``files`` (each file name its
    workspace path) and/or ``archive`` (a tar or zip of the analysis directory, whose
    reana.yaml is used when there is no ``spec`` part). The caller closes the form and the
    files.
    """
    media = _media_type(request)
    if media in ARCHIVE_MEDIA_TYPES:
        source = await _spool_body(request, MAX_ARCHIVE_BYTES)
        try:
            files = await _archive_files(source)
        finally:
            source.close()
        try:
            return _spec_from_files(files, "body"), files, None
        except BaseException:
            files.close()
            raise
    if media != "multipart/form-data":
        if media and media not in SPEC_MEDIA_TYPES:
            raise _unsupported(
                media,
                (*SPEC_MEDIA_TYPES, "multipart/form-data", *ARCHIVE_MEDIA_TYPES),
                "the reana.yaml (alone, with its files as multipart, or in a tar/zip)",
            )
        return await read_spec(request), None, None
    form = await request.form(max_files=MAX_MEMBERS, max_fields=10, max_part_size=MAX_SPEC_BYTES)
    files = WorkflowFiles()
    try:
        await _form_files(form, files)
        spec_part = form.get("spec")
        if isinstance(spec_part, UploadFile):
            spec = await spec_part.read()
        elif isinstance(spec_part, str):
            spec = spec_part.encode()
        else:
            spec = _spec_from_files(files, "spec")
        if not spec.strip():
            raise _empty_spec("spec")
    except BaseException:
        files.close()
        await form.close()
        raise
    return spec, files, form


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
    """A run submission: JSON, or multipart with ``run`` (JSON), ``spec``, ``files``, ``archive``.

    ``archive`` is a tar or zip of the analysis directory: its files join the uploads (each at
    its path in the archive) and its reana.yaml is the specification unless ``spec`` or the
    ``run`` part gives one. The caller closes the returned form (its spooled files) when done.
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
            files = WorkflowFiles()
            try:
                await _form_files(form, files)
                if "spec" not in data and form.getlist("archive"):
                    data["spec"] = _spec_from_files(files, "archive").decode(errors="replace")
            finally:
                form = _FormWithFiles(form, files)  # the unpacked members close with the form
            body = _run_create(data, "run")
            uploads = [UploadedFile(path=p, file=f) for p, f in files.streams.items()]
        except BaseException:
            await form.close()
            raise
        return body, uploads, form
    if media not in ("application/json", ""):
        raise _unsupported(media, ("application/json", "multipart/form-data"), "the run")
    raw_body = await read_limited(request, MAX_JSON_BYTES)
    try:
        data = json.loads(raw_body)
    except ValueError as exc:
        raise BadRequestError(f"the body is not JSON: {exc}") from exc
    return _run_create(data, "body"), [], None
