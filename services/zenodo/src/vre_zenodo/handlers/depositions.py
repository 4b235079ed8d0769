"""Routes of depositions: Data Lake files → Zenodo → DOI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from vre_common.deps import BearerToken, CurrentUser, own_path
from vre_common.problems import problem_responses
from vre_common.types import OFFSET_MAX
from vre_zenodo.handlers.deps import DepositionServiceDep
from vre_zenodo.models import (
    AccountDepositionList,
    Deposition,
    DepositionCreate,
    DepositionList,
    MetadataUpdate,
    VersionCreate,
)

router = APIRouter(prefix="/depositions", tags=["depositions"])

_UPSTREAM = (502, 503, 504)


def _location(request: Request, deposition_id: str) -> str:
    return own_path(request, "get_deposition", deposition_id=deposition_id)


@router.post(
    "",
    summary="Create a deposition from Data Lake files",
    description="Create a Zenodo draft from Data Lake DIDs (files; datasets and containers "
    "are expanded) and/or a workflow run's registered outputs, with metadata given directly "
    "and/or taken from a catalogue entry (`software_id`). At most 100 files (Zenodo's limit; "
    "more is a 422 before anything is created). The files stream from the Data Lake to "
    "Zenodo in the background: follow the deposition at `Location` until its state is "
    "`ready` (or `incomplete`: retry with POST …/upload), then publish. Needs your "
    "registered Zenodo token.",
    status_code=202,
    response_model=Deposition,
    responses=problem_responses(401, 403, 404, 409, 422, *_UPSTREAM),
)
async def create_deposition(
    *,
    body: DepositionCreate,
    request: Request,
    response: Response,
    user: CurrentUser,
    bearer: BearerToken,
    depositions: DepositionServiceDep,
) -> Deposition:
    dep = await depositions.create(user, bearer, body)
    response.headers["Location"] = _location(request, dep.id)
    return dep


@router.get(
    "",
    summary="Your depositions",
    description="Depositions you made through the VRE, newest first, with their states "
    "(uploading, incomplete, ready, published, discarded).",
    response_model=DepositionList,
    responses=problem_responses(401),
)
async def list_depositions(
    *, user: CurrentUser, depositions: DepositionServiceDep
) -> DepositionList:
    return DepositionList(items=await depositions.list_mine(user))


@router.get(
    "/zenodo",
    summary="Depositions in your Zenodo account",
    description="What Zenodo lists for your token (made through the VRE or not).",
    response_model=AccountDepositionList,
    responses=problem_responses(401, 403, *_UPSTREAM),
)
async def list_zenodo_depositions(
    *,
    user: CurrentUser,
    depositions: DepositionServiceDep,
    page: Annotated[int, Query(ge=1, le=OFFSET_MAX)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 25,
) -> AccountDepositionList:
    return AccountDepositionList(items=await depositions.list_at_zenodo(user, page, size))


@router.get(
    "/{deposition_id}",
    summary="A deposition",
    description="Its state, DOI once published, and each file's upload state and progress.",
    response_model=Deposition,
    responses=problem_responses(401, 404),
)
async def get_deposition(
    *, deposition_id: str, user: CurrentUser, depositions: DepositionServiceDep
) -> Deposition:
    return await depositions.get(user, deposition_id)


@router.post(
    "/{deposition_id}/upload",
    summary="Retry a deposition's upload",
    description="Upload again what Zenodo does not hold yet (files already in the bucket "
    "with the right md5 are skipped). For `incomplete` depositions.",
    status_code=202,
    response_model=Deposition,
    responses=problem_responses(401, 403, 404, 409, *_UPSTREAM),
)
async def retry_deposition_upload(
    *,
    deposition_id: str,
    user: CurrentUser,
    bearer: BearerToken,
    depositions: DepositionServiceDep,
) -> Deposition:
    return await depositions.retry_upload(user, bearer, deposition_id)


@router.post(
    "/{deposition_id}/publish",
    summary="Publish a deposition",
    description="Publish at Zenodo (its state must be `ready`: every file uploaded). Answers "
    "the deposition with its DOI, which is then written onto the Data Lake DIDs as the "
    "`doi` metadata key. Zenodo's validation errors (missing title, creators, description, "
    "upload type …) come back as a 422 listing each field; the deposition stays ready. "
    "Calling it again on a published deposition retries a DOI write-back that failed.",
    response_model=Deposition,
    responses=problem_responses(401, 403, 404, 409, 422, *_UPSTREAM),
)
async def publish_deposition(
    *,
    deposition_id: str,
    user: CurrentUser,
    bearer: BearerToken,
    depositions: DepositionServiceDep,
) -> Deposition:
    return await depositions.publish(user, bearer, deposition_id)


@router.post(
    "/{deposition_id}/versions",
    summary="New version of a publication",
    description="A new-version draft of a published deposition. Without `dids`/`run_id` the "
    "previous files are kept; with them the new version holds exactly those files. Metadata "
    "given overrides the previous version's (set `version`). Files upload in the background "
    "like a new deposition; publish it when ready.",
    status_code=202,
    response_model=Deposition,
    responses=problem_responses(401, 403, 404, 409, 422, *_UPSTREAM),
)
async def create_deposition_version(
    *,
    deposition_id: str,
    body: VersionCreate,
    request: Request,
    response: Response,
    user: CurrentUser,
    bearer: BearerToken,
    depositions: DepositionServiceDep,
) -> Deposition:
    dep = await depositions.new_version(user, bearer, deposition_id, body)
    response.headers["Location"] = _location(request, dep.id)
    return dep


@router.put(
    "/{deposition_id}/metadata",
    summary="Change a deposition's metadata",
    description="Fields given replace the current ones. A draft is updated; a published "
    "record is edited and published again (its files stay; if Zenodo refuses the change "
    "the edit is discarded).",
    response_model=Deposition,
    responses=problem_responses(401, 403, 404, 409, 422, *_UPSTREAM),
)
async def update_deposition_metadata(
    *,
    deposition_id: str,
    body: MetadataUpdate,
    user: CurrentUser,
    depositions: DepositionServiceDep,
) -> Deposition:
    return await depositions.update_metadata(user, deposition_id, body)


@router.delete(
    "/{deposition_id}",
    summary="Discard a draft",
    description="Delete an unpublished deposition at Zenodo (a running upload is stopped). "
    "Published records cannot be discarded.",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409, *_UPSTREAM),
)
async def discard_deposition(
    *, deposition_id: str, user: CurrentUser, depositions: DepositionServiceDep
) -> Response:
    await depositions.discard(user, deposition_id)
    return Response(status_code=204)
