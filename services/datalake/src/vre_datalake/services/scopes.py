"""Project scopes: created for the gateway when a project is created, asked whether they hold data.

Creation needs the service's own Rucio rights, so only callers the gateway trusts for it may
ask: over HTTP (``POST /scopes``) a token of the gateway's service identity (a member of
``projects.provisioner_groups`` or an allowed client) or of an administrator; in the embedded
mode the gateway calls :meth:`ScopeService.create_project_scope` in-process. Neither path
looks the project up: the gateway creates the scope before it commits the project's row.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import cast

from vre_common.auth import Principal
from vre_common.errors import NotFoundError
from vre_datalake.backends.base import DatalakeBackend
from vre_datalake.config import AccountSettings, ProjectScopeSettings
from vre_datalake.errors import InvalidNameError, ProvisionForbiddenError
from vre_datalake.models import Did, ProjectScope, ScopeCreate
from vre_datalake.names import check_scope, is_valid_account
from vre_datalake.services.policy import ProjectScopes


class ScopeService:
    """Creates project scopes with their GROUP account and limit."""

    def __init__(
        self,
        *,
        backend: DatalakeBackend,
        projects: ProjectScopes,
        settings: ProjectScopeSettings,
        accounts: AccountSettings,
        admin_groups: Sequence[str],
    ) -> None:
        self._backend = backend
        self._projects = projects
        self._settings = settings
        self._accounts = accounts
        self._admin_groups = list(admin_groups)

    def check_provisioner(self, principal: Principal) -> None:
        """Raise 403 unless ``principal`` is the gateway's service identity or an admin."""
        if principal.client_id and principal.client_id in self._settings.provisioner_clients:
            return
        groups = [*self._settings.provisioner_groups, *self._admin_groups]
        if any(principal.in_group(g) for g in groups):
            return
        raise ProvisionForbiddenError(
            "project scopes are created by the gateway when a project is created "
            "(POST /projects), not directly"
        )

    async def create(self, principal: Principal, request: ScopeCreate) -> ProjectScope:
        """``POST /scopes``: a trusted caller asks for a project's scope."""
        self.check_provisioner(principal)
        return await self.create_project_scope(
            request.scope, project=request.project, quota_bytes=request.quota_bytes
        )

    async def create_project_scope(
        self, scope: str, *, project: str, quota_bytes: int | None
    ) -> ProjectScope:
        """Create ``scope`` for ``project`` (trusted callers only); 409 if it exists."""
        check_scope(scope, "scope")
        if not self._projects.is_project_scope(scope) or self._projects.slug_of(scope) != project:
            raise InvalidNameError(
                "scope", f"a project scope is {self._projects.scope_prefix}<project slug>"
            )
        account = self._projects.account_of(scope)
        if not is_valid_account(account):
            raise InvalidNameError("project", f"{account!r} is not a valid Rucio account name")
        if quota_bytes is None:
            quota_bytes = self._accounts.default_limit_bytes
        await self._backend.create_project_scope(scope, account=account, quota_bytes=quota_bytes)
        return ProjectScope(scope=scope, project=project, account=account, quota_bytes=quota_bytes)

    async def scope_has_data(self, scope: str) -> bool:
        """True if any DID is registered in ``scope`` (asked with the service's identity)."""
        stream = self._backend.iter_dids(
            self._backend.service_actor(),
            check_scope(scope),
            name="*",
            did_type="all",
            filters=[],
            limit=1,
        )
        try:
            async with aclosing(cast("AsyncGenerator[Did, None]", stream)) as dids:
                async for _ in dids:
                    return True
        except NotFoundError:
            return False
        return False
