"""Routes of imports: a Zenodo record's files into the Data Lake."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vre_common.deps import BearerToken, CurrentUser, own_path
from vre_common.problems import problem_responses
from vre_zenodo.handlers.deps import ImportServiceDep
from vre_zenodo.models import Import, ImportCreate, ImportList

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post(
    "",
    summary="Import a Zenodo record",
    description="Start copying every file of a Zenodo record (by DOI or record id) into a "
    "Data Lake scope, as you. Each file is streamed with its md5 checked (a mismatch "
    "registers nothing), attached to a dataset named after the record (`zenodo-<record id>`) "
    "whose metadata gets the DOI, title, version and license. Answers 202 with the job; "
    "follow it at the `Location`. Uses your Zenodo token if one is registered (restricted "
    "records), anonymous access otherwise.",
    status_code=202,
    response_model=Import,
    responses=problem_responses(401, 403, 404, 409, 422, 502, 503, 504),
)
async def create_import(
    *,
    body: ImportCreate,
    request: Request,
    response: Response,
    user: CurrentUser,
    bearer: BearerToken,
    imports: ImportServiceDep,
) -> Import:
    job = await imports.start(user, bearer, body)
    response.headers["Location"] = own_path(request, "get_import", import_id=job.id)
    return job


@router.get(
    "",
    summary="Your imports",
    description="Your imports, newest first, with per-file progress.",
    response_model=ImportList,
    responses=problem_responses(401),
)
async def list_imports(*, user: CurrentUser, imports: ImportServiceDep) -> ImportList:
    return ImportList(items=await imports.list_mine(user))


@router.get(
    "/{import_id}",
    summary="An import and its progress",
    description="The job's state (queued, running, completed, failed, interrupted) and each "
    "file's bytes done / total and state (pending, transferring, done, exists, failed).",
    response_model=Import,
    responses=problem_responses(401, 404),
)
async def get_import(*, import_id: str, user: CurrentUser, imports: ImportServiceDep) -> Import:
    return await imports.get(user, import_id)
