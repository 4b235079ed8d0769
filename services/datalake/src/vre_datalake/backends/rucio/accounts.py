"""Accounts and scopes: who a caller is in Rucio, the scopes, an account's usage and limits."""

from __future__ import annotations

import time
from urllib.parse import quote, unquote

from vre_common.auth import Principal
from vre_common.errors import BadGatewayError
from vre_datalake.backends.base import Actor
from vre_datalake.backends.rucio.common import RucioCalls
from vre_datalake.backends.rucio.provisioning import RucioAccounts
from vre_datalake.backends.rucio.rest import BearerAuth
from vre_datalake.errors import ScopeExistsError
from vre_datalake.models import RseUsage, Scope

_SCOPES_TTL = 30.0


class AccountCalls(RucioCalls):
    """``/accounts``, ``/identities`` and ``/scopes``."""

    _accounts: RucioAccounts
    _scope_prefix: str
    _whoami: dict[str, str]
    _scopes: tuple[float, set[str]]

    async def bind(self, principal: Principal, bearer: str | None) -> Actor:
        """The caller's account: ``whoami`` in token mode, mapping/creation in service mode."""
        if self._token_mode:
            if not bearer:
                raise BadGatewayError("token mode needs the caller's bearer token")
            account = self._whoami.get(principal.key)
            if account is None:
                response = await self._rest.request(
                    "GET",
                    "/accounts/whoami",
                    auth=BearerAuth(bearer),
                    operation="whoami",
                    ok=(200, 303),
                )
                if response.status_code == 303:
                    account = unquote(response.headers["location"].rstrip("/").split("/")[-1])
                else:
                    account = str(response.json()["account"])
                self._whoami[principal.key] = account
        else:
            account = await self._accounts.account_for(principal)
        return Actor(
            account=account,
            scope=self._accounts.scope_of(account),
            user_key=principal.key,
            bearer=bearer,
            principal=principal,
        )

    async def list_scopes(self, actor: Actor) -> list[Scope]:
        """Every scope, with the account a ``user.<account>`` scope belongs to."""
        names = await self._scope_names(actor, fresh=True)
        prefix = self._scope_prefix
        return [
            Scope(
                name=name,
                account=name[len(prefix) :] if name.startswith(prefix) else None,
                mine=name == actor.scope,
            )
            for name in sorted(names)
        ]

    async def _scope_names(self, actor: Actor, *, fresh: bool = False) -> set[str]:
        stamp, names = self._scopes
        if fresh or time.monotonic() - stamp > _SCOPES_TTL:
            data = await self._rest.json(
                "GET", "/scopes/", auth=self._user(actor), operation="list_scopes"
            )
            names = {str(s) for s in data or []}
            self._scopes = (time.monotonic(), names)
        return names

    async def scope_exists(self, actor: Actor, scope: str) -> bool:
        """True if ``scope`` exists (scope list cached for a few seconds)."""
        if scope in await self._scope_names(actor):
            return True
        return scope in await self._scope_names(actor, fresh=True)

    async def create_project_scope(
        self, scope: str, *, account: str, quota_bytes: int | None
    ) -> None:
        """A project's scope and GROUP account, with the service's own rights."""
        if await self.scope_exists(self.service_actor(), scope):
            raise ScopeExistsError(f"the scope {scope} exists")
        try:
            await self._accounts.provision_project(scope, account, quota_bytes)
        except BaseException:
            self._scopes = (0.0, set())  # the next existence check asks Rucio
            raise
        self._scopes[1].add(scope)

    async def account_usage(self, actor: Actor) -> list[RseUsage]:
        """``GET /accounts/{account}/usage/local`` (with the limits on every RSE)."""
        out = []
        async for item in self._rest.stream(
            "GET",
            f"/accounts/{quote(actor.account)}/usage/local",
            auth=self._user(actor),
            operation="get_local_account_usage",
        ):
            limit = item.get("bytes_limit")
            used = int(item.get("bytes") or 0)
            limit_value = int(limit) if limit is not None and limit != float("inf") else None
            out.append(
                RseUsage(
                    rse=str(item["rse"]),
                    used_bytes=used,
                    used_files=int(item.get("files") or 0),
                    limit_bytes=limit_value,
                    remaining_bytes=(
                        max(0, limit_value - used) if limit_value is not None else None
                    ),
                )
            )
        return sorted(out, key=lambda u: u.rse)
