"""A project's audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vre_common.deps import CurrentUser
from vre_common.policy import Action
from vre_common.problems import problem_responses
from vre_common.types import OFFSET_MAX
from vre_gateway.handlers.deps import ServicesDep
from vre_gateway.models.audit import AuditPage

router = APIRouter(tags=["audit"])


@router.get(
    "/projects/{slug}/audit",
    summary="A project's audit log",
    description="Every write in the project — the gateway's own and those the services "
    "reported — newest first: who, what, when, request id. Owners and maintainers.",
    responses=problem_responses(401, 403, 404),
)
async def project_audit(
    slug: str,
    user: CurrentUser,
    services: ServicesDep,
    before: Annotated[
        int | None, Query(ge=1, le=OFFSET_MAX, description="Rows older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    project, _ = await services.access.require(user, slug, Action.AUDIT_READ)
    return await services.auditor.page(project, before=before, limit=limit)
