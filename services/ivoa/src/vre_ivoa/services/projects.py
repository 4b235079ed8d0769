"""ProjectGate: the project policy for results written into project scopes.

A Data Lake scope ``<projects.scope_prefix><slug>`` belongs to a Science Project. Writing a
query's result there needs ``data.write`` (the shared table of :mod:`vre_common.policy`,
asked of the gateway with the caller's own token); reading an upload table from one needs
``data.read``. Other scopes are left to the datalake, which checks every read and write.
"""

from __future__ import annotations

from vre_common.auth import Principal
from vre_common.policy import Action, Policy, ProjectAccess
from vre_ivoa.errors import ProjectsUnavailableError


class ProjectGate:
    """Which scopes are projects', and whether the caller may act there."""

    def __init__(self, scope_prefix: str) -> None:
        self.scope_prefix = scope_prefix
        self.policy: Policy | None = None

    def use(self, policy: Policy | None) -> None:
        """The gateway's policy (in-process or over HTTP); None: project scopes are refused."""
        self.policy = policy

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
        """Allow ``action`` in ``scope`` if it is a project's (raise 404/403/409 otherwise)."""
        if self.slug_of(scope) is None:
            return None
        if self.policy is None:
            raise ProjectsUnavailableError(
                f"{scope} is a project scope and this ivoa service has no gateway to ask "
                "about projects (gateway_url)"
            )
        return await self.policy.require(user, action, scope=scope, token=bearer)
