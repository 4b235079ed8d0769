"""RSEs, scopes and the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter, Query

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_datalake.handlers.deps import CatalogueDep, CurrentActor, ScopeServiceDep
from vre_datalake.handlers.paths import RsePath
from vre_datalake.models import Identity, ProjectScope, Rse, Scope, ScopeCreate

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
async def get_rse(*, rse: RsePath, actor: CurrentActor, catalogue: CatalogueDep) -> Rse:
    return await catalogue.get_rse(actor, rse)


@router.get(
    "/scopes",
    summary="List scopes",
    description="Every scope the caller may see (a private project's scope only to its "
    "members); the caller's own scope and the project scopes they may write in are marked "
    "`mine`, project scopes carry the project's slug.",
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


@router.post(
    "/scopes",
    summary="Create a project scope (the gateway)",
    description="Internal: the gateway asks for a Science Project's scope when the project is "
    "created. Creates the Rucio GROUP account that owns it and its limit on every RSE "
    "(`quota_bytes`, or the default). Only the gateway's service identity "
    "(`projects.provisioner_groups` or `provisioner_clients`) and administrators may call it; "
    "409 when the scope exists.",
    status_code=201,
    response_model=ProjectScope,
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def create_scope(
    *, body: ScopeCreate, user: CurrentUser, scopes: ScopeServiceDep
) -> ProjectScope:
    return await scopes.create(user, body)
