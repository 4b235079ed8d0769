"""Routes of reproductions: a DOI back to a re-run, compared file by file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse

from vre_common.deps import BearerToken, CurrentUser, own_path
from vre_common.problems import problem_responses
from vre_zenodo.handlers.deps import FactoryDep, SessionDep
from vre_zenodo.models import Reproduction, ReproductionCreate, ReproductionList
from vre_zenodo.services.reproductions import ReproductionService

router = APIRouter(prefix="/reproductions", tags=["reproductions"])


async def reproduction_service(factory: FactoryDep, session: SessionDep) -> ReproductionService:
    """The reproductions service of this request."""
    return factory.reproduction_service(session)


ReproductionServiceDep = Annotated[ReproductionService, Depends(reproduction_service)]


@router.post(
    "",
    summary="Reproduce a published result",
    description="From a DOI alone: the record's `vre-run-record.json` is read (422 saying "
    "what is missing when there is none), then a job checks each input (the same DID with "
    "the recorded checksums, else the record's own copy, else it stops before running and "
    "names the input), re-runs the recorded specification in `project` (or as a personal "
    "run) and compares every output: identical by md5, tables (FITS, CSV, ECSV, Parquet, "
    "VOTable) numerically at `tolerance`, text by a short diff. The verdict is `reproduced`, "
    "`reproduced within tolerance`, `differs` or `could not run` (with the reason). Answers "
    "202 with the job; follow it at the `Location`.",
    status_code=202,
    response_model=Reproduction,
    responses=problem_responses(401, 403, 404, 409, 422, 502, 503, 504),
)
async def create_reproduction(
    *,
    body: ReproductionCreate,
    request: Request,
    response: Response,
    user: CurrentUser,
    bearer: BearerToken,
    reproductions: ReproductionServiceDep,
) -> Reproduction:
    job = await reproductions.start(user, bearer, body)
    response.headers["Location"] = own_path(request, "get_reproduction", reproduction_id=job.id)
    return job


@router.get(
    "",
    summary="Your reproductions",
    description="Your reproductions, newest first.",
    response_model=ReproductionList,
    responses=problem_responses(401),
)
async def list_reproductions(
    *, user: CurrentUser, reproductions: ReproductionServiceDep
) -> ReproductionList:
    return ReproductionList(items=await reproductions.list_mine(user))


@router.get(
    "/{reproduction_id}",
    summary="A reproduction",
    description="State (queued, checking, running, comparing, finished, cancelled, "
    "interrupted), the inputs as found, the re-run's id, each output compared and the verdict.",
    response_model=Reproduction,
    responses=problem_responses(401, 404),
)
async def get_reproduction(
    *, reproduction_id: str, user: CurrentUser, reproductions: ReproductionServiceDep
) -> Reproduction:
    return await reproductions.get(user, reproduction_id)


@router.get(
    "/{reproduction_id}/logs",
    summary="A reproduction's log",
    description="What the job did, one timestamped line a step (the re-run's own logs are "
    "at /workflows/runs/{run_id}/logs).",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **problem_responses(401, 404)},
)
async def get_reproduction_logs(
    *, reproduction_id: str, user: CurrentUser, reproductions: ReproductionServiceDep
) -> PlainTextResponse:
    return PlainTextResponse(await reproductions.log(user, reproduction_id))


@router.post(
    "/{reproduction_id}/cancel",
    summary="Cancel a reproduction",
    description="Stops the job and cancels its re-run; a finished reproduction is left as is.",
    response_model=Reproduction,
    responses=problem_responses(401, 404),
)
async def cancel_reproduction(
    *, reproduction_id: str, user: CurrentUser, reproductions: ReproductionServiceDep
) -> Reproduction:
    return await reproductions.cancel(user, reproduction_id)
