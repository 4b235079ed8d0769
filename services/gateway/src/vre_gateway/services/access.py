"""The caller's access to projects, computed from the gateway's own tables.

This is the answer every service gets through :class:`vre_common.policy.ProjectDirectory`:
over HTTP (``GET /projects/-/access``) or in-process (:class:`InProcessProjectDirectory`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import async_sessionmaker

from vre_common.auth import Principal
from vre_common.db import Database
from vre_common.policy import (
    READ_ACTIONS,
    Action,
    ProjectAccess,
    Visibility,
    authorize,
    is_allowed,
)
from vre_gateway.storage.projects import ProjectStore
from vre_gateway.storage.records import ProjectRecord


def to_access(record: ProjectRecord, role: object) -> ProjectAccess:
    """A project row and the caller's role as the policy's model."""
    return ProjectAccess.model_validate(
        {
            "project": record.slug,
            "scope": record.scope,
            "visibility": record.visibility,
            "archived": record.archived,
            "role": role,
        }
    )


class AccessService:
    """Looks projects up and decides with :func:`vre_common.policy.authorize`."""

    def __init__(self, store: ProjectStore) -> None:
        self.store = store

    async def lookup(
        self, principal: Principal | None, *, project: str | None = None, scope: str | None = None
    ) -> ProjectAccess | None:
        """Directory semantics: None when unknown or private to the caller."""
        found = await self.store.get_with_role(principal, slug=project, scope=scope)
        if found is None:
            return None
        access = to_access(*found)
        if access.role is None and access.visibility is Visibility.PRIVATE:
            return None
        return access

    async def require(
        self, principal: Principal | None, slug: str, action: Action
    ) -> tuple[ProjectRecord, ProjectAccess]:
        """The project and the caller's access, if the caller may do ``action``; else raise."""
        found = await self.store.get_with_role(principal, slug=slug)
        access = None if found is None else to_access(*found)
        authorize(access, principal, action, target=slug)
        assert found is not None
        assert access is not None
        return found[0], access

    async def permitted(
        self, principal: Principal | None, project_ids: Sequence[str], action: Action
    ) -> set[str]:
        """The ids among ``project_ids`` where the caller may do ``action`` (for filtering)."""
        records = await self.store.get_many(project_ids)
        roles = await self.store.roles(principal, list(records)) if principal else {}
        return {
            pid
            for pid, r in records.items()
            if is_allowed(action, roles.get(pid), r.visibility, authenticated=principal is not None)
            and (not r.archived or action in READ_ACTIONS)
        }


class InProcessProjectDirectory:
    """The embedded mode's directory: asks the gateway's database directly (no HTTP hop).

    Each lookup is one query in a session of its own, outside a transaction (no BEGIN and
    ROLLBACK round trips around a single read).
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._reads = async_sessionmaker(
            database.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
        )

    async def access(
        self,
        principal: Principal | None,
        *,
        project: str | None = None,
        scope: str | None = None,
        token: str | None = None,
    ) -> ProjectAccess | None:
        if (project is None) == (scope is None):
            raise ValueError("name exactly one of project= or scope=")
        async with self._reads() as session:
            return await AccessService(ProjectStore(session)).lookup(
                principal, project=project, scope=scope
            )
