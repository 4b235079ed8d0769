"""Who may do what in a Science Project: one permission table, one decision, for every service.

A caller's role in a project is the highest of their direct membership and of the IAM
groups bound to the project (``/escape/cta`` → member). Only the gateway knows memberships;
a service asks it through a :class:`ProjectDirectory` and never trusts a role sent by a client.

The decision (:func:`authorize`):

- unknown project, or a private one where the caller has no role → 404 (existence is private);
- the caller's role is listed for the action → allowed;
- a public project and the action is open to ``Audience.AUTHENTICATED`` (any signed-in user)
  or ``Audience.ANONYMOUS`` (anyone) → allowed;
- otherwise 403 for a signed-in caller, 401 for an anonymous one (signing in may help);
- allowed, but the project is archived and the action is not a read → 409.

Use in a service::

    policy = Policy(directory)  # HttpProjectDirectory(gateway_url) or the gateway's own
    access = await policy.require(user, Action.DATA_WRITE, scope=scope, token=token)

or, in a route, the :data:`vre_common.deps.PolicyDep` dependency (the policy of the app's
:class:`vre_common.link.GatewayLink`, bound to the request's bearer token):
``await policy.require(user, Action.RUNS_SUBMIT, project=body.project)``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, Field

from vre_common.auth import Principal
from vre_common.clients.datalake import raise_for_problem
from vre_common.errors import (
    BackendUnavailableError,
    ConflictError,
    ForbiddenError,
    InvalidTokenError,
    NotFoundError,
)
from vre_common.http import backend_call, make_http_client
from vre_common.settings import HttpClientSettings


class Role(StrEnum):
    """A role in a project; ``owner > maintainer > member > viewer``."""

    OWNER = "owner"
    MAINTAINER = "maintainer"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        """Higher is stronger (viewer 1 … owner 4)."""
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        """True if this role is ``other`` or stronger."""
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.MAINTAINER: 3, Role.OWNER: 4}


def strongest(*roles: Role | None) -> Role | None:
    """The highest of some roles (None when none is given)."""
    present = [r for r in roles if r is not None]
    return max(present, key=lambda r: r.rank) if present else None


class Audience(StrEnum):
    """Who besides members may act on a **public** project (never on a private one)."""

    AUTHENTICATED = "authenticated"  # any caller with a valid token
    ANONYMOUS = "anonymous"  # anyone, with or without a token


Grantee = Role | Audience


class Action(StrEnum):
    """Every project-scoped action of every service."""

    PROJECT_READ = "project.read"
    PROJECT_UPDATE = "project.update"
    PROJECT_VISIBILITY = "project.visibility"
    PROJECT_DELETE = "project.delete"
    MEMBERS_READ = "members.read"
    MEMBERS_MANAGE = "members.manage"
    INVITATIONS_READ = "invitations.read"
    OWNERSHIP_TRANSFER = "ownership.transfer"
    AUDIT_READ = "audit.read"
    DATA_READ = "data.read"
    DATA_WRITE = "data.write"
    DATA_DELETE = "data.delete"
    RUNS_READ = "runs.read"
    RUNS_SUBMIT = "runs.submit"
    RUNS_CANCEL = "runs.cancel"
    PUBLISH = "publish"
    CATALOGUE_WRITE = "catalogue.write"
    PROVENANCE_READ = "provenance.read"


def _from(role: Role, *extra: Audience) -> frozenset[Grantee]:
    return frozenset([*(r for r in Role if r.at_least(role)), *extra])


# THE table. docs/authorization.md is rendered from it (a test keeps them equal).
PERMISSIONS: dict[Action, frozenset[Grantee]] = {
    Action.PROJECT_READ: _from(Role.VIEWER, Audience.AUTHENTICATED, Audience.ANONYMOUS),
    Action.PROJECT_UPDATE: _from(Role.MAINTAINER),
    Action.PROJECT_VISIBILITY: _from(Role.OWNER),
    Action.PROJECT_DELETE: _from(Role.OWNER),
    Action.MEMBERS_READ: _from(Role.VIEWER),
    Action.MEMBERS_MANAGE: _from(Role.MAINTAINER),
    Action.INVITATIONS_READ: _from(Role.MAINTAINER),
    Action.OWNERSHIP_TRANSFER: _from(Role.OWNER),
    Action.AUDIT_READ: _from(Role.MAINTAINER),
    Action.DATA_READ: _from(Role.VIEWER, Audience.AUTHENTICATED),
    Action.DATA_WRITE: _from(Role.MEMBER),
    Action.DATA_DELETE: _from(Role.MAINTAINER),
    Action.RUNS_READ: _from(Role.VIEWER, Audience.AUTHENTICATED),
    Action.RUNS_SUBMIT: _from(Role.MEMBER),
    Action.RUNS_CANCEL: _from(Role.MEMBER),
    Action.PUBLISH: _from(Role.MAINTAINER),
    Action.CATALOGUE_WRITE: _from(Role.MAINTAINER),
    Action.PROVENANCE_READ: _from(Role.VIEWER, Audience.AUTHENTICATED),
}

# What an archived project still allows: it is read-only.
READ_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.PROJECT_READ,
        Action.MEMBERS_READ,
        Action.INVITATIONS_READ,
        Action.AUDIT_READ,
        Action.DATA_READ,
        Action.RUNS_READ,
        Action.PROVENANCE_READ,
    }
)

_DESCRIPTIONS: dict[Action, str] = {
    Action.PROJECT_READ: "see the project (name, description, links, scope)",
    Action.PROJECT_UPDATE: "change name, description, links",
    Action.PROJECT_VISIBILITY: "make the project public or private",
    Action.PROJECT_DELETE: "delete (no data) or archive the project",
    Action.MEMBERS_READ: "list members, group bindings",
    Action.MEMBERS_MANAGE: "add/remove members, bind groups, invite (roles up to maintainer)",
    Action.INVITATIONS_READ: "see the project's invitations (also once it is archived)",
    Action.OWNERSHIP_TRANSFER: "make another member owner; grant or revoke owner",
    Action.AUDIT_READ: "read the project's audit log",
    Action.DATA_READ: "list and download the project scope's DIDs",
    Action.DATA_WRITE: "upload, import a DOI's files, create datasets, attach, set metadata",
    Action.DATA_DELETE: "delete or detach DIDs, remove rules",
    Action.RUNS_READ: "see the project's runs, logs and outputs",
    Action.RUNS_SUBMIT: "start a workflow run in the project",
    Action.RUNS_CANCEL: "cancel a run of the project",
    Action.PUBLISH: "publish project data or run outputs to Zenodo (get a DOI)",
    Action.CATALOGUE_WRITE: "register or edit catalogue entries owned by the project",
    Action.PROVENANCE_READ: "walk the provenance graph of the project's entities",
}


class Visibility(StrEnum):
    """Who can see a project: its members only, or every caller (read-only)."""

    PRIVATE = "private"
    PUBLIC = "public"


class ProjectAccess(BaseModel):
    """What a service needs to know about a project and the caller, from the gateway."""

    project: str = Field(description="The project's slug.", examples=["cta-dm"])
    scope: str = Field(description="The project's Data Lake scope.", examples=["proj.cta-dm"])
    visibility: Visibility
    archived: bool = False
    role: Role | None = Field(
        default=None,
        description="The caller's role: the highest of direct membership and bound groups.",
    )


# ----------------------------------------------------------------------------- decision


class ProjectNotFoundError(NotFoundError):
    """No such project, or it is private and the caller is not in it."""

    slug = "project-not-found"
    title = "Project not found"


class ProjectForbiddenError(ForbiddenError):
    """The caller may see the project but not do this."""

    slug = "project-forbidden"
    title = "Not allowed in this project"


class ProjectArchivedError(ConflictError):
    """The project is archived: it is read-only."""

    slug = "project-archived"
    title = "Project archived"


def is_allowed(
    action: Action, role: Role | None, visibility: Visibility, *, authenticated: bool
) -> bool:
    """The table's answer alone (no archive state, no error choice)."""
    grantees = PERMISSIONS[action]
    if role is not None and role in grantees:
        return True
    if visibility is not Visibility.PUBLIC:
        return False
    if Audience.ANONYMOUS in grantees:
        return True
    return authenticated and Audience.AUTHENTICATED in grantees


def authorize(
    access: ProjectAccess | None,
    principal: Principal | None,
    action: Action,
    *,
    target: str = "the project",
) -> ProjectAccess:
    """Return ``access`` if ``principal`` may do ``action``; raise 404/403/401/409 otherwise.

    ``access`` is what the directory answered (None: unknown or invisible).
    """
    if access is None or (access.role is None and access.visibility is Visibility.PRIVATE):
        raise ProjectNotFoundError(f"no project {target} (or it is private)")
    if not is_allowed(action, access.role, access.visibility, authenticated=principal is not None):
        if principal is None:
            raise InvalidTokenError("missing bearer token")
        who = f"a {access.role.value}" if access.role else "a non-member"
        raise ProjectForbiddenError(
            f"{who} may not do {action.value} in the project {access.project}",
            extra={"action": action.value, "project": access.project},
        )
    if access.archived and action not in READ_ACTIONS:
        raise ProjectArchivedError(f"the project {access.project} is archived (read-only)")
    return access


# ----------------------------------------------------------------------------- directory


class ProjectDirectory(Protocol):
    """Where a service learns a project's scope, visibility and the caller's role."""

    async def access(
        self,
        principal: Principal | None,
        *,
        project: str | None = None,
        scope: str | None = None,
        token: str | None = None,
    ) -> ProjectAccess | None:
        """The project named by slug or by scope, seen by ``principal``.

        None when it does not exist or is private to the caller. ``token`` is the caller's
        bearer token (an HTTP directory acts with it; an in-process one ignores it).
        """
        ...


def _target(project: str | None, scope: str | None) -> tuple[Literal["project", "scope"], str]:
    if (project is None) == (scope is None):
        raise ValueError("name exactly one of project= or scope=")
    if project is not None:
        return "project", project
    assert scope is not None
    return "scope", scope


class HttpProjectDirectory:
    """Asks the gateway (``GET /projects/-/access``) with the caller's own token.

    Answers are cached for ``ttl_seconds`` per (caller, target), negative ones included, so
    a burst of requests costs one round trip; a gateway outage is a 503, never a guess.
    """

    def __init__(
        self,
        gateway_url: str,
        *,
        ttl_seconds: float = 5.0,
        max_entries: int = 10_000,
        http: httpx.AsyncClient | None = None,
        settings: HttpClientSettings | None = None,
    ) -> None:
        self.base_url = gateway_url.rstrip("/")
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._owns_http = http is None
        self._http = http or make_http_client(settings or HttpClientSettings(read_timeout=10.0))
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, ProjectAccess | None]] = (
            OrderedDict()
        )
        self.lookups = 0  # round trips made (for tests and metrics)

    async def aclose(self) -> None:
        """Close the HTTP client if this directory created it."""
        if self._owns_http:
            await self._http.aclose()

    def forget(self) -> None:
        """Drop every cached answer (e.g. right after changing a membership)."""
        self._cache.clear()

    async def access(
        self,
        principal: Principal | None,
        *,
        project: str | None = None,
        scope: str | None = None,
        token: str | None = None,
    ) -> ProjectAccess | None:
        kind, value = _target(project, scope)
        if principal is not None and not token:
            raise ValueError("the HTTP directory needs the caller's token")
        key = (principal.key if principal else "", kind, value)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        headers = {"Accept": "application/json"}
        if principal is not None and token:
            headers["Authorization"] = f"Bearer {token}"
        self.lookups += 1
        async with backend_call("gateway", "project_access"):
            response = await self._http.get(
                f"{self.base_url}/projects/-/access", params={kind: value}, headers=headers
            )
        result: ProjectAccess | None
        if response.status_code == 404:
            result = None
        else:
            await raise_for_problem(response, "project_access")
            result = ProjectAccess.model_validate(response.json())
        self._cache[key] = (now + self.ttl, result)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return result


class Policy:
    """The one authorization entry point of a service: directory lookup + :func:`authorize`."""

    def __init__(self, directory: ProjectDirectory) -> None:
        self.directory = directory

    async def require(
        self,
        principal: Principal | None,
        action: Action,
        *,
        project: str | None = None,
        scope: str | None = None,
        token: str | None = None,
    ) -> ProjectAccess:
        """The project's access if ``principal`` may do ``action``; raise 404/403/401/409."""
        kind, value = _target(project, scope)
        access = await self.directory.access(principal, project=project, scope=scope, token=token)
        return authorize(access, principal, action, target=f"{kind} {value}")

    async def allowed(
        self,
        principal: Principal | None,
        action: Action,
        *,
        project: str | None = None,
        scope: str | None = None,
        token: str | None = None,
    ) -> bool:
        """Like :meth:`require` but answers True/False (for filtering lists)."""
        access = await self.directory.access(principal, project=project, scope=scope, token=token)
        if access is None:
            return False
        return is_allowed(
            action, access.role, access.visibility, authenticated=principal is not None
        ) and (not access.archived or action in READ_ACTIONS)


class ProjectsUnavailableError(BackendUnavailableError):
    """A project scope is involved, and no gateway is configured to authorize it."""

    slug = "projects-unavailable"
    title = "Projects unavailable"


class ProjectGate:
    """Which Data Lake scopes are projects', and whether the caller may act there.

    A scope ``<scope_prefix><slug>`` belongs to a Science Project: acting there needs the
    action's permission (asked of the gateway's :class:`Policy` with the caller's own token).
    Other scopes are left to the datalake, which checks every read and write itself.
    """

    def __init__(self, scope_prefix: str, *, service: str, policy: Policy | None) -> None:
        self.scope_prefix = scope_prefix
        self.service = service
        self.policy = policy  # the gateway's (in-process or over HTTP); None: refused (503)

    def scope_of(self, slug: str) -> str:
        """A project's scope."""
        return self.scope_prefix + slug

    def slug_of(self, scope: str) -> str | None:
        """The project's slug of a project scope; None for any other scope."""
        if scope.startswith(self.scope_prefix) and len(scope) > len(self.scope_prefix):
            return scope[len(self.scope_prefix) :]
        return None

    async def require(
        self, user: Principal, bearer: str | None, scope: str, action: Action
    ) -> ProjectAccess | None:
        """Allow ``action`` in ``scope`` if it is a project's (raise 404/403/409/503 otherwise)."""
        if self.slug_of(scope) is None:
            return None
        if self.policy is None:
            raise ProjectsUnavailableError(
                f"{scope} is a project scope and this {self.service} service has no gateway "
                "to ask about projects (gateway_url)"
            )
        return await self.policy.require(user, action, scope=scope, token=bearer)

    async def require_all(
        self, user: Principal, bearer: str | None, scopes: Iterable[str], action: Action
    ) -> None:
        """:meth:`require` for each distinct scope."""
        for scope in sorted(set(scopes)):
            await self.require(user, bearer, scope, action)


class RequestPolicy:
    """A :class:`Policy` bound to one request's bearer token (what :data:`PolicyDep` gives)."""

    def __init__(self, policy: Policy, token: str | None) -> None:
        self.policy = policy
        self.token = token

    async def require(
        self,
        principal: Principal | None,
        action: Action,
        *,
        project: str | None = None,
        scope: str | None = None,
    ) -> ProjectAccess:
        """See :meth:`Policy.require`."""
        return await self.policy.require(
            principal, action, project=project, scope=scope, token=self.token
        )

    async def allowed(
        self,
        principal: Principal | None,
        action: Action,
        *,
        project: str | None = None,
        scope: str | None = None,
    ) -> bool:
        """See :meth:`Policy.allowed`."""
        return await self.policy.allowed(
            principal, action, project=project, scope=scope, token=self.token
        )


# ----------------------------------------------------------------------------- docs


def _cell(action: Action, grantee: Grantee) -> str:
    return "✔" if grantee in PERMISSIONS[action] else "—"


def permission_table_markdown() -> str:
    """The permission table as Markdown (what docs/authorization.md embeds)."""
    columns: list[Grantee] = [*Role, Audience.AUTHENTICATED, Audience.ANONYMOUS]
    heads = [
        *(r.value for r in Role),
        "any signed-in user (public projects)",
        "anonymous (public projects)",
    ]
    lines = [
        "| action | what it covers | " + " | ".join(heads) + " | archived |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for action in Action:
        cells = " | ".join(_cell(action, g) for g in columns)
        archived = "✔" if action in READ_ACTIONS else "409"
        lines.append(f"| `{action.value}` | {_DESCRIPTIONS[action]} | {cells} | {archived} |")
    return "\n".join(lines) + "\n"


def permission_table() -> dict[str, Any]:
    """The table as JSON-friendly data (``GET /projects/-/permissions`` serves it)."""
    return {
        "roles": [r.value for r in Role],
        "actions": {
            a.value: {
                "description": _DESCRIPTIONS[a],
                "grantees": sorted(g.value for g in PERMISSIONS[a]),
                "allowed_when_archived": a in READ_ACTIONS,
            }
            for a in Action
        },
    }


__all__ = [
    "PERMISSIONS",
    "READ_ACTIONS",
    "Action",
    "Audience",
    "Grantee",
    "HttpProjectDirectory",
    "Policy",
    "ProjectAccess",
    "ProjectArchivedError",
    "ProjectDirectory",
    "ProjectForbiddenError",
    "ProjectGate",
    "ProjectNotFoundError",
    "ProjectsUnavailableError",
    "RequestPolicy",
    "Role",
    "Visibility",
    "authorize",
    "is_allowed",
    "permission_table",
    "permission_table_markdown",
    "strongest",
]
