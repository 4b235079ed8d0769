"""Replication rules, usage against quotas, and the DID resolver."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from vre_common.problems import problem_responses
from vre_common.types import SCOPE_PATTERN, stated
from vre_datalake.handlers.deps import (
    CurrentActor,
    ResolveServiceDep,
    RuleServiceDep,
    UsageServiceDep,
)
from vre_datalake.models import (
    ResolveRequest,
    ResolveResult,
    Rule,
    RuleCreate,
    RulesCreated,
    RuleUpdate,
    RuleWithLocks,
    Usage,
)

router = APIRouter()


@router.post(
    "/rules",
    tags=["rules"],
    summary="Create replication rules",
    description="One rule per DID, owned by the caller's account, placing `copies` replicas "
    "on RSEs matching `rse_expression`. Quota is checked by Rucio (507 when short).",
    status_code=201,
    response_model=RulesCreated,
    responses=problem_responses(401, 403, 404, 409, 422, 503, 507),
)
async def create_rules(
    *, body: RuleCreate, actor: CurrentActor, rules: RuleServiceDep
) -> RulesCreated:
    return await rules.create(actor, body)


@router.get(
    "/rules",
    tags=["rules"],
    summary="List the caller's rules",
    description="Every rule of the caller's account with the bytes its locks hold; "
    "`sort=bytes` lists the biggest first (what to delete when over quota).",
    response_model=list[Rule],
    responses=problem_responses(401, 503),
)
async def list_rules(
    *,
    actor: CurrentActor,
    rules: RuleServiceDep,
    sort: Literal["created", "bytes"] = Query(default="created"),
) -> list[Rule]:
    return await rules.list(actor, sort=sort)


@router.get(
    "/rules/{rule_id}",
    tags=["rules"],
    summary="Get a rule with its locks",
    description="One of the caller's rules with the state of every lock.",
    response_model=RuleWithLocks,
    responses=problem_responses(401, 404, 503),
)
async def get_rule(*, rule_id: str, actor: CurrentActor, rules: RuleServiceDep) -> RuleWithLocks:
    return await rules.get(actor, rule_id)


@router.patch(
    "/rules/{rule_id}",
    tags=["rules"],
    summary="Change a rule's lifetime",
    description="Seconds from now until the rule expires; `null` removes the expiry.",
    response_model=RuleWithLocks,
    responses=problem_responses(401, 404, 422, 503),
)
async def update_rule(
    *, rule_id: str, body: RuleUpdate, actor: CurrentActor, rules: RuleServiceDep
) -> RuleWithLocks:
    return await rules.update_lifetime(actor, rule_id, body.lifetime)


@router.delete(
    "/rules/{rule_id}",
    tags=["rules"],
    summary="Delete a rule",
    description="Deletes one of the caller's rules. Rucio deletes softly: the rule expires "
    "one hour later (its `expires_at` shows when) and replicas no other rule locks are reaped "
    "after that; `immediately=true` expires it now, for the next daemon pass.",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 503),
)
async def delete_rule(
    *,
    rule_id: str,
    actor: CurrentActor,
    rules: RuleServiceDep,
    immediately: bool = Query(default=False),
) -> Response:
    await rules.delete(actor, rule_id, immediately=immediately)
    return Response(status_code=204)


@router.get(
    "/usage",
    tags=["usage"],
    summary="Usage and quotas",
    description="Per RSE: bytes and files the caller's account uses, its limit, what "
    "remains, and the RSE's free space where known; `scope=proj.<slug>`: the same for a "
    "project the caller may read. (Rucio updates usage in a background pass, so it lags "
    "writes by that pass.)",
    response_model=Usage,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_usage(
    *,
    actor: CurrentActor,
    usage: UsageServiceDep,
    scope: str | None = Query(
        default=None, description="A project scope.", json_schema_extra=stated(SCOPE_PATTERN)
    ),
) -> Usage:
    return await usage.usage(actor, scope)


@router.post(
    "/resolve",
    tags=["resolve"],
    summary="Resolve DIDs to files and replicas",
    description="Files behind files, datasets and containers with size, checksums and "
    "readable replica URLs (local paths for POSIX RSEs); replicas on RSEs matching "
    "`rse_expression` come first and are marked `preferred`.",
    response_model=ResolveResult,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def resolve(
    *, body: ResolveRequest, actor: CurrentActor, resolver: ResolveServiceDep
) -> ResolveResult:
    return await resolver.resolve(actor, body.dids, body.rse_expression)
