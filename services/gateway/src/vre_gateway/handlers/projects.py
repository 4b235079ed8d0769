"""Projects: create, list, read, change, delete/archive; the access answer services ask for."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from vre_common.deps import OptionalUser, bearer_token
from vre_common.errors import InvalidInputError
from vre_common.policy import ProjectAccess, ProjectNotFoundError, permission_table
from vre_common.problems import problem_responses
from vre_common.types import OFFSET_MAX
from vre_gateway.handlers.deps import KnownUser, ServicesDep
from vre_gateway.models.projects import (
    Project,
    ProjectCreate,
    ProjectFilter,
    ProjectList,
    ProjectUpdate,
)

router = APIRouter(prefix="/projects", tags=["projects"])
Slug = Annotated[str, "project slug"]


@router.get(
    "/-/access",
    summary="A project's access for the caller (for services)",
    description="What the policy module of every service asks: the project's scope, "
    "visibility, archive state and the caller's role (direct or through a bound group). "
    "Name the project by `project` (slug) or by `scope`. 404 when it does not exist or is "
    "private to the caller.",
    responses=problem_responses(401, 404, 422),
)
async def project_access(
    services: ServicesDep,
    user: OptionalUser,
    project: Annotated[str | None, Query(max_length=32)] = None,
    scope: Annotated[str | None, Query(max_length=25)] = None,
) -> ProjectAccess:
    if (project is None) == (scope is None):
        raise InvalidInputError("give exactly one of project and scope")
    access = await services.projects.lookup(user, project=project, scope=scope)
    if access is None:
        raise ProjectNotFoundError(f"no project {project or scope} (or it is private)")
    return access


@router.get(
    "/-/permissions",
    summary="The permission table",
    description="Who may do what in a project: each action with the roles (and, for public "
    "projects, audiences) allowed. The same table every service enforces.",
)
async def permissions() -> dict[str, Any]:
    return permission_table()


@router.post(
    "",
    status_code=201,
    summary="Create a project",
    description="Self-service: any signed-in user (within the configured limits) creates a "
    "project, becomes its owner, and gets its Data Lake scope `<prefix><slug>`.",
    responses=problem_responses(401, 403, 409, 422, 502, 503),
)
async def create_project(
    request: Request, body: ProjectCreate, user: KnownUser, services: ServicesDep
) -> Project:
    return await services.projects.create(user, body, bearer_token(request))


@router.get(
    "",
    summary="List projects",
    description="The caller's projects (direct or through a group) and public ones; "
    "anonymous callers see public projects.",
    responses=problem_responses(401),
)
async def list_projects(
    services: ServicesDep,
    user: OptionalUser,
    filter: Annotated[ProjectFilter, Query()] = ProjectFilter.ALL,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX)] = 0,
) -> ProjectList:
    return await services.projects.list(user, filter, limit=limit, offset=offset)


@router.get(
    "/{slug}",
    summary="Get a project",
    description="404 if it does not exist or is private and the caller is not in it.",
    responses=problem_responses(401, 404),
)
async def get_project(slug: Slug, services: ServicesDep, user: OptionalUser) -> Project:
    return await services.projects.get(user, slug)


@router.patch(
    "/{slug}",
    summary="Change a project",
    description="Name, description, links: maintainers; visibility: owners.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_project(
    slug: Slug, body: ProjectUpdate, user: KnownUser, services: ServicesDep
) -> Project:
    return await services.projects.update(user, slug, body)


@router.delete(
    "/{slug}",
    status_code=204,
    response_class=Response,
    summary="Delete or archive a project",
    description="Owners only. Refused (409) while the project's scope holds data, unless "
    "`archive=true`: the project then becomes read-only and keeps its data.",
    responses=problem_responses(401, 403, 404, 409, 502, 503),
)
async def delete_project(
    request: Request,
    slug: Slug,
    user: KnownUser,
    services: ServicesDep,
    archive: bool = False,
) -> None:
    await services.projects.delete(user, slug, archive=archive, token=bearer_token(request))
