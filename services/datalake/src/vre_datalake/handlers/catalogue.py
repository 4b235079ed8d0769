"""RSEs, scopes and the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter, Query

from vre_common.problems import problem_responses
from vre_datalake.handlers.deps import CatalogueDep, CurrentActor
from vre_datalake.models import Identity, Rse, Scope

router = APIRouter(tags=["catalogue"])


@router.get(
    "/rses",
    summary="List storage elements",
    description="Every RSE (or those matching an RSE expression) with its attributes, "
    "protocols and the space Rucio and the storage report.",
    response_model=list[Rse],
    responses=problem_responses(401, 422, 503),
)
async def list_rses(
    *,
    actor: CurrentActor,
    catalogue: CatalogueDep,
    expression: str | None = Query(
        default=None, max_length=3000, description="Rucio RSE expression, e.g. `vre_kind=posix`."
    ),
) -> list[Rse]:
    return await catalogue.list_rses(actor, expression)


@router.get(
    "/rses/{rse}",
    summary="Get a storage element",
    description="One RSE with attributes, protocols and space.",
    response_model=Rse,
    responses=problem_responses(401, 404, 422, 503),
)
async def get_rse(*, rse: str, actor: CurrentActor, catalogue: CatalogueDep) -> Rse:
    return await catalogue.get_rse(actor, rse)


@router.get(
    "/scopes",
    summary="List scopes",
    description="Every scope; the one the caller may write in is marked `mine`.",
    response_model=list[Scope],
    responses=problem_responses(401, 503),
)
async def list_scopes(*, actor: CurrentActor, catalogue: CatalogueDep) -> list[Scope]:
    return await catalogue.list_scopes(actor)


@router.get(
    "/scopes/mine",
    summary="The caller's own scope",
    description="The Rucio account the caller acts as and the `user.<account>` scope it owns "
    "(both created on first use).",
    response_model=Identity,
    responses=problem_responses(401, 503),
)
async def my_scope(*, actor: CurrentActor, catalogue: CatalogueDep) -> Identity:
    return catalogue.identity(actor)
