"""ProjectGate: the project policy for imports into, and publications from, project scopes.

A Data Lake scope ``<projects.scope_prefix><slug>`` belongs to a Science Project. Importing a
Zenodo record into it needs ``data.write`` there; publishing its DIDs needs ``publish`` (the
shared table of :mod:`vre_common.policy`, asked of the gateway with the caller's own token).
Other scopes are left to the datalake, which checks every read and write itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from vre_common.auth import Principal
from vre_common.policy import Action, Policy, ProjectAccess
from vre_zenodo.errors import ProjectsUnavailableError


class ProjectGate:
    """Which scopes are projects', and whether the caller may act there."""

    def __init__(self, scope_prefix: str) -> None:
        self.scope_prefix = scope_prefix
        self.policy: Policy | None = None

    def use(self, policy: Policy | None) -> None:
        """The gateway's policy (in-process or over HTTP); None: project scopes are refused."""
        self.policy = policy

    def slug_of(self, scope: str) -> str | None:
        """The project's slug of a project scope; None for any other scope."""
        if scope.startswith(self.scope_prefix) and len(scope) > len(self.scope_prefix):
            return scope[len(self.scope_prefix) :]
        return None

    async def require(
        self, user: Principal, bearer: str | None, scope: str, action: Action
    ) -> ProjectAccess | None:
        """Allow ``action`` in ``scope`` if it is a project's (raise 404/403/409 otherwise)."""
        if self.slug_of(scope) is None:
            return None
        if self.policy is None:
            raise ProjectsUnavailableError(
                f"{scope} is a project scope and this zenodo service has no gateway to ask "
                "about projects (gateway_url)"
            )
        return await self.policy.require(user, action, scope=scope, token=bearer)

    async def require_all(
        self, user: Principal, bearer: str | None, scopes: Iterable[str], action: Action
    ) -> None:
        """:meth:`require` for each distinct scope."""
        for scope in sorted(set(scopes)):
            await self.require(user, bearer, scope, action)
