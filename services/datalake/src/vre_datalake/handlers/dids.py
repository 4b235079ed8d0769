"""DIDs: search, get, create collections, attach/detach, metadata, content, replicas, archive."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from vre_common.problems import problem_responses
from vre_common.types import (
    DID_NAME_FILTER_PATTERN,
    META_CONDITION_PATTERN,
    OFFSET_MAX,
    stated,
)
from vre_datalake.handlers.deps import (
    CurrentActor,
    DidServiceDep,
    FileServiceDep,
    get_factory,
    wants_ndjson,
)
from vre_datalake.handlers.params import check_pattern, no_items, parse_filters
from vre_datalake.handlers.paths import DidNamePath, ScopePath
from vre_datalake.handlers.streaming import AbortableStreamingResponse, ndjson_doc, ndjson_response
from vre_datalake.models import (
    BulkMetadataUpdate,
    Did,
    DidCreate,
    DidList,
    DidPage,
    FileReplicas,
    MetadataUpdate,
)

router = APIRouter(tags=["dids"])
_ERRORS = problem_responses(401, 403, 404, 422, 503)
# Writes also meet an archived project (read-only): 409.
_WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422, 503)


@router.get(
    "/dids/{scope}",
    summary="Search DIDs in a scope",
    description=(
        "Name wildcards (`*`), a type filter and metadata conditions `meta=key<op>value` "
        "(op: `=`, `!=`, `>`, `>=`, `<`, `<=`; values are JSON scalars or plain strings). "
        "DID-column keys work everywhere, arbitrary keys where Rucio runs on PostgreSQL. "
        "Answers one page as JSON, or every match streamed as NDJSON with "
        "`Accept: application/x-ndjson` (flat memory for any number of results)."
    ),
    response_model=DidPage,
    responses={200: {"content": ndjson_doc(Did)}, **_ERRORS},
)
async def list_dids(
    *,
    request: Request,
    scope: ScopePath,
    actor: CurrentActor,
    dids: DidServiceDep,
    name: str = Query(
        default="*",
        max_length=250,
        description="Name pattern with `*`.",
        json_schema_extra=stated(DID_NAME_FILTER_PATTERN),
    ),
    type: Literal["all", "file", "dataset", "container", "collection"] = Query(default="all"),
    meta: list[str] = Query(
        default_factory=no_items,
        description="Conditions key<op>value.",
        json_schema_extra={"items": {"type": "string", "pattern": META_CONDITION_PATTERN}},
    ),
    offset: int = Query(default=0, ge=0, le=OFFSET_MAX, description="JSON pages: results to skip."),
    limit: int | None = Query(
        default=None, ge=1, le=OFFSET_MAX, description="JSON pages: page size."
    ),
) -> Any:
    pattern, filters = check_pattern(name), parse_filters(meta)
    if wants_ndjson(request):
        stream = await dids.search(
            actor, scope, name=pattern, did_type=type, filters=filters, limit=limit
        )
        return ndjson_response(stream)
    listing = get_factory(request).settings.listing
    return await dids.page(
        actor,
        scope,
        name=pattern,
        did_type=type,
        filters=filters,
        offset=offset,
        limit=min(limit or listing.default_page_size, listing.max_page_size),
    )


@router.post(
    "/dids/{scope}",
    summary="Create a dataset or container",
    description="Creates an open dataset (or a container) in the caller's scope.",
    status_code=201,
    response_model=Did,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def create_did(
    *, scope: ScopePath, body: DidCreate, actor: CurrentActor, dids: DidServiceDep
) -> Did:
    return await dids.create(actor, scope, body)


@router.post(
    "/metadata",
    summary="Set metadata on many DIDs",
    description="Sets metadata keys on several DIDs of the caller's scope in one Rucio call.",
    status_code=204,
    response_class=Response,
    responses=_WRITE_ERRORS,
)
async def set_metadata_bulk(
    *, body: BulkMetadataUpdate, actor: CurrentActor, dids: DidServiceDep
) -> Response:
    await dids.set_metadata_bulk(actor, body)
    return Response(status_code=204)


@router.get(
    "/dids/{scope}/{name:path}/content",
    summary="List a collection's content",
    description="The DIDs attached to a dataset or container; `recursive=true` walks "
    "sub-collections too. JSON list, or NDJSON with `Accept: application/x-ndjson`.",
    response_model=list[Did],
    responses={200: {"content": ndjson_doc(Did)}, **_ERRORS},
)
async def list_content(
    *,
    request: Request,
    scope: ScopePath,
    name: DidNamePath,
    actor: CurrentActor,
    dids: DidServiceDep,
    recursive: bool = Query(default=False),
) -> Any:
    stream = await dids.content(actor, scope, name, recursive=recursive)
    if wants_ndjson(request):
        return ndjson_response(stream)
    return [did async for did in stream]


@router.post(
    "/dids/{scope}/{name:path}/attach",
    summary="Attach DIDs to a collection",
    description="Attach files to a dataset, or datasets/containers to a container.",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def attach_dids(
    *, scope: ScopePath, name: DidNamePath, body: DidList, actor: CurrentActor, dids: DidServiceDep
) -> Response:
    await dids.attach(actor, scope, name, body.dids)
    return Response(status_code=204)


@router.post(
    "/dids/{scope}/{name:path}/detach",
    summary="Detach DIDs from a collection",
    description="Detach DIDs from a dataset or container (the DIDs themselves stay).",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def detach_dids(
    *, scope: ScopePath, name: DidNamePath, body: DidList, actor: CurrentActor, dids: DidServiceDep
) -> Response:
    await dids.detach(actor, scope, name, body.dids)
    return Response(status_code=204)


@router.post(
    "/dids/{scope}/{name:path}/metadata",
    summary="Set metadata on a DID",
    description="Sets the given keys (others keep their values); returns the DID.",
    response_model=Did,
    responses=_WRITE_ERRORS,
)
async def set_metadata(
    *,
    scope: ScopePath,
    name: DidNamePath,
    body: MetadataUpdate,
    actor: CurrentActor,
    dids: DidServiceDep,
) -> Did:
    return await dids.set_metadata(actor, scope, name, body.metadata)


@router.get(
    "/dids/{scope}/{name:path}/replicas",
    summary="List replicas",
    description="The files of a DID (a collection is expanded) with every replica: RSE, "
    "state and URL (PFN).",
    response_model=list[FileReplicas],
    responses=_ERRORS,
)
async def list_replicas(
    *, scope: ScopePath, name: DidNamePath, actor: CurrentActor, files: FileServiceDep
) -> list[FileReplicas]:
    return await files.replicas(actor, scope, name)


@router.get(
    "/dids/{scope}/{name:path}/archive",
    summary="Download a collection as a tar archive",
    description="Every file of a dataset or container, streamed as a tar (paths "
    "`scope/name`); each file is checksum-verified on the way.",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}}, **_ERRORS},
)
async def download_archive(
    *, scope: ScopePath, name: DidNamePath, actor: CurrentActor, files: FileServiceDep
) -> StreamingResponse:
    archive = await files.archive(actor, scope, name)
    return AbortableStreamingResponse(
        archive.body,
        headers={"Content-Disposition": f'attachment; filename="{archive.filename}"'},
        media_type="application/x-tar",
    )


@router.get(
    "/dids/{scope}/{name:path}",
    summary="Get a DID",
    description="A file, dataset or container with its metadata.",
    response_model=Did,
    responses=_ERRORS,
)
async def get_did(
    *, scope: ScopePath, name: DidNamePath, actor: CurrentActor, dids: DidServiceDep
) -> Did:
    return await dids.get(actor, scope, name)
