"""Routes of OSSR harvest jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status

from vre_catalogue.handlers.deps import HarvestServiceDep
from vre_catalogue.models import HarvestCreate, HarvestJob, HarvestJobList
from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses

router = APIRouter(prefix="/harvest", tags=["harvest"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Harvest a Zenodo community",
    description=(
        "Starts a background job pulling a Zenodo community (the OSSR, `escape2020`, by "
        "default) into the catalogue: only records changed since the last successful harvest "
        "(unless `full`), each record's own codemeta.json preferred to its Zenodo metadata; a "
        "second harvest adds nothing. Curators and administrators only. Follow the job at "
        "`GET /harvest/{id}`."
    ),
    response_model=HarvestJob,
    responses=problem_responses(401, 403, 409, 422),
)
async def start_harvest(
    user: CurrentUser,
    harvest: HarvestServiceDep,
    response: Response,
    request: Annotated[HarvestCreate | None, Body()] = None,
) -> HarvestJob:
    job = await harvest.start(user, request or HarvestCreate())
    response.headers["Location"] = f"harvest/{job.id}"
    return job


@router.get(
    "",
    summary="List harvest jobs",
    description="The 20 newest harvest jobs.",
    response_model=HarvestJobList,
    responses=problem_responses(401),
)
async def list_harvests(user: CurrentUser, harvest: HarvestServiceDep) -> HarvestJobList:
    return HarvestJobList(items=await harvest.recent())


@router.get(
    "/{job_id}",
    summary="Get a harvest job",
    description="A harvest job with its progress and counts.",
    response_model=HarvestJob,
    responses=problem_responses(401, 404),
)
async def get_harvest(
    job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], user: CurrentUser, harvest: HarvestServiceDep
) -> HarvestJob:
    return await harvest.get(job_id)
