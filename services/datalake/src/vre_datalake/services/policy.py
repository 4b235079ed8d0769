"""Who may read, write and delete in which scope, and as which Rucio account.

- The caller's own ``user.<account>`` scope: everything, as the caller's account.
- A project scope (``<projects.scope_prefix><slug>``): the shared project policy decides
  (``data.read`` / ``data.write`` / ``data.delete`` of :mod:`vre_common.policy`, asked of the
  gateway): 404 when the project is unknown or private to the caller, 403 when the caller's
  role is too weak, 409 when the project is archived. Reads run as the caller's account;
  writes and deletes as the project's GROUP account, which owns the scope in Rucio (so
  Rucio's generic permissions allow them, and uploads count against the project's limit).
- Any other scope (another user's, an administrator's): 403 if it exists, 404 if not.

Without a project directory (no gateway configured) project scopes follow the last rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
from enum import StrEnum
from typing import Protocol

from vre_common.policy import Action, Policy, is_allowed
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.config import ProjectScopeSettings
from vre_datalake.errors import ScopeForbiddenError, ScopeNotFoundError
from vre_datalake.models import Scope
from vre_datalake.names import check_scope


class ScopeAction(StrEnum):
    """What a caller wants to do in a scope."""

    READ = "read"
    WRITE = "write"  # upload, create collections, attach, set metadata
    DELETE = "delete"  # detach, delete rules of the project


PROJECT_ACTIONS: dict[ScopeAction, Action] = {
    ScopeAction.READ: Action.DATA_READ,
    ScopeAction.WRITE: Action.DATA_WRITE,
    ScopeAction.DELETE: Action.DATA_DELETE,
}
_LISTING_CONCURRENCY = 8


class ProjectScopes:
    """How project scopes and their Rucio accounts are named (one place)."""

    def __init__(self, settings: ProjectScopeSettings) -> None:
        self.scope_prefix = settings.scope_prefix
        self.account_prefix = settings.accounts

    def is_project_scope(self, scope: str) -> bool:
        """True for ``<scope_prefix><slug>``."""
        return scope.startswith(self.scope_prefix) and len(scope) > len(self.scope_prefix)

    def slug_of(self, scope: str) -> str:
        """The project's slug of a project scope."""
        return scope[len(self.scope_prefix) :]

    def account_of(self, scope: str) -> str:
        """The GROUP account that owns a project scope."""
        return self.account_prefix + self.slug_of(scope)

    def scope_of_account(self, account: str) -> str | None:
        """The project scope a project account owns (None for any other account)."""
        if account.startswith(self.account_prefix) and len(account) > len(self.account_prefix):
            return self.scope_prefix + account[len(self.account_prefix) :]
        return None


class ScopePolicy(Protocol):
    """Decides whether an actor may act in a scope, and as whom."""

    async def authorize(self, actor: Actor, scope: str, action: ScopeAction) -> Actor:
        """The actor to use in ``scope`` if allowed; raise 403/404 (409 archived) otherwise."""
        ...

    async def visible_scopes(self, actor: Actor, scopes: list[Scope]) -> list[Scope]:
        """``scopes`` without the project scopes the caller may not read; ``mine`` set on the
        project scopes the caller may write in, and ``project`` on every project scope."""
        ...


class DatalakePolicy:
    """The datalake's :class:`ScopePolicy` (see the module docstring)."""

    def __init__(
        self, backend: DatalakeBackend, projects: ProjectScopes, policy: Policy | None
    ) -> None:
        self._backend = backend
        self.projects = projects
        self.policy = policy  # the gateway's (in-process, or over HTTP); None: no projects

    async def authorize(self, actor: Actor, scope: str, action: ScopeAction) -> Actor:
        """Own scope: as the caller; project scope: the shared policy; else 403 or 404."""
        check_scope(scope)
        project_scope = self.projects.is_project_scope(scope)
        if scope == actor.scope and not project_scope:
            return actor
        if self.policy is not None and project_scope:
            access = await self.policy.require(
                actor.principal, PROJECT_ACTIONS[action], scope=scope, token=actor.bearer
            )
            if action is ScopeAction.READ:
                return dataclasses.replace(actor, project=access.project)
            return dataclasses.replace(
                actor,
                account=self.projects.account_of(scope),
                scope=scope,
                project=access.project,
            )
        if await self._backend.scope_exists(actor, scope):
            raise ScopeForbiddenError(f"you may not {action.value} in the scope {scope}")
        raise ScopeNotFoundError(f"no scope {scope}")

    async def visible_scopes(self, actor: Actor, scopes: list[Scope]) -> list[Scope]:
        """The scopes :meth:`authorize` lets the caller read: the caller's own, and the project
        scopes the project policy allows, annotated (bounded concurrency). Other users'
        personal scopes are left out: listing them would name people whose files one may
        not read."""
        policy = self.policy
        limit = asyncio.Semaphore(_LISTING_CONCURRENCY)

        async def check(scope: Scope) -> Scope | None:
            if not self.projects.is_project_scope(scope.name):
                return scope if scope.name == actor.scope else None
            if policy is None:
                return None
            async with limit:
                access = await policy.directory.access(
                    actor.principal, scope=scope.name, token=actor.bearer
                )
            signed_in = actor.principal is not None
            if access is None or not is_allowed(
                Action.DATA_READ, access.role, access.visibility, authenticated=signed_in
            ):
                return None
            writable = not access.archived and is_allowed(
                Action.DATA_WRITE, access.role, access.visibility, authenticated=signed_in
            )
            return scope.model_copy(
                update={
                    "project": access.project,
                    "mine": writable,
                    "account": self.projects.account_of(scope.name),
                }
            )

        checked = await asyncio.gather(*(check(s) for s in scopes))
        return [s for s in checked if s is not None]
