"""Routes of queries: run a query at a VO service, its result written into the Data Lake."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from vre_common.deps import BearerToken, CurrentUser, own_path
from vre_common.problems import problem_responses
from vre_ivoa.handlers.deps import QueryServiceDep
from vre_ivoa.models import Query, QueryCreate, QueryList

router = APIRouter(prefix="/queries", tags=["queries"])


@router.post(
    "",
    summary="Run a query into the Data Lake",
    description="Run ADQL at a TAP service (optionally joined with a Data Lake table sent as "
    "`TAP_UPLOAD.<table_name>`), a cone search, or an SIA v2 query; the result table is "
    "written into the Data Lake (`destination`: your scope or a project's, a name, VOTable / "
    "FITS / Parquet) with metadata (service, query, row count, time) and a provenance event. "
    "Small queries run synchronously (201 with the finished job); others run as a job (202; "
    "follow it at the `Location`). A query the service refuses (an ADQL syntax error) is a "
    "422 whose detail is the service's message; an unreachable service 503, a slow one 504, "
    "a garbled answer 502. Nothing is written when a query fails.",
    status_code=201,
    response_model=Query,
    responses={
        202: {"description": "Accepted: running as a job", "model": Query},
        **problem_responses(401, 403, 404, 409, 422, 502, 503, 504),
    },
)
async def create_query(
    *,
    body: QueryCreate,
    request: Request,
    response: Response,
    user: CurrentUser,
    bearer: BearerToken,
    queries: QueryServiceDep,
) -> Query:
    job, finished = await queries.start(user, bearer, body)
    response.headers["Location"] = own_path(request, "get_query", query_id=job.id)
    if not finished:
        response.status_code = 202
    return job


@router.get(
    "",
    summary="Your queries",
    description="Your queries, newest first.",
    response_model=QueryList,
    responses=problem_responses(401),
)
async def list_queries(*, user: CurrentUser, queries: QueryServiceDep) -> QueryList:
    return QueryList(items=await queries.list_mine(user))


@router.get(
    "/{query_id}",
    summary="A query: phase, rows, timings, result or error",
    description="Phase (QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED, INTERRUPTED), the "
    "result's DID, row count and columns, timings, and the problem that ended a failed query "
    "(with the service's own message).",
    response_model=Query,
    responses=problem_responses(401, 404),
)
async def get_query(*, query_id: str, user: CurrentUser, queries: QueryServiceDep) -> Query:
    return await queries.get(user, query_id)


@router.post(
    "/{query_id}/cancel",
    summary="Cancel a query",
    description="Stop a running query (its UWS job at the service is aborted); nothing is "
    "written. 409 once the query has ended.",
    response_model=Query,
    responses=problem_responses(401, 404, 409),
)
async def cancel_query(*, query_id: str, user: CurrentUser, queries: QueryServiceDep) -> Query:
    return await queries.cancel(user, query_id)
