"""Routes of Zenodo records: search and lookup, proxied within Zenodo's limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_zenodo.handlers.deps import CredentialServiceDep, RecordServiceDep
from vre_zenodo.models import Record, RecordPage

router = APIRouter(prefix="/records", tags=["records"])


@router.get(
    "",
    summary="Search Zenodo records",
    description="Zenodo's records search (`q` in its query syntax, a community, a resource "
    "type). Zenodo serves pages of at most 25 hits anonymously and 100 with a token: with "
    "your registered token the larger cap applies; larger pages are assembled from several "
    "Zenodo pages. Only the first 10,000 hits of a search can be reached.",
    response_model=RecordPage,
    responses=problem_responses(401, 403, 422, 429, 502, 503, 504),
)
async def search_records(
    *,
    user: CurrentUser,
    records: RecordServiceDep,
    credentials: CredentialServiceDep,
    q: Annotated[str | None, Query(max_length=1000, examples=["gammapy"])] = None,
    community: Annotated[str | None, Query(max_length=100, examples=["escape2020"])] = None,
    type: Annotated[str | None, Query(max_length=50, examples=["software", "dataset"])] = None,
    sort: Annotated[str | None, Query(max_length=50, examples=["mostrecent"])] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> RecordPage:
    token = await credentials.optional_token(user)
    return await records.search(
        q=q, community=community, record_type=type, page=page, size=size, sort=sort, token=token
    )


@router.get(
    "/{record_id}",
    summary="A Zenodo record",
    description="One record with its files (name, size, md5).",
    response_model=Record,
    responses=problem_responses(401, 403, 404, 502, 503, 504),
)
async def get_record(
    *,
    record_id: int,
    user: CurrentUser,
    records: RecordServiceDep,
    credentials: CredentialServiceDep,
) -> Record:
    return await records.get(record_id, await credentials.optional_token(user))
