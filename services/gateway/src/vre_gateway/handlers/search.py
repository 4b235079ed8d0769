"""One search across projects, Data Lake DIDs, catalogue entries, runs and depositions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from vre_common.deps import CurrentUser, bearer_token
from vre_common.problems import problem_responses
from vre_gateway.handlers.deps import ServicesDep
from vre_gateway.models.search import SearchResults

router = APIRouter(tags=["search"])


@router.get(
    "/search",
    summary="Search everything",
    description="Projects (names), Data Lake DIDs in the caller's projects (names), "
    "catalogue entries, runs and Zenodo depositions, in one result shape. Each source has "
    "its own timeout; when one is slow or down the answer is `partial` and `sources` says "
    "which (ok, timeout, error, skipped).",
    responses=problem_responses(401, 422),
)
async def search(
    *,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    types: Annotated[
        str | None,
        Query(description="Comma-separated: project, did, software, run, deposition."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SearchResults:
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    return await services.search.search(user, bearer_token(request), q, wanted, limit)
