"""Which Rucio account an IAM identity acts as, and its creation on first use (``service`` mode).

An IAM identity is ``(iss, sub)``; Rucio records it as an OIDC identity ``SUB=<sub>, ISS=<iss>``.
On first use the service creates: an account named after the preferred username (sanitized,
with ``-2``, ``-3`` … on collision), the OIDC identity, a mapping of the service's own userpass
identity to the account (so the service can obtain a token for it with ``X-Rucio-Account``),
the scope ``user.<account>`` and the configured account limits.

A project scope is owned by a GROUP account named with a reserved prefix (``proj-<slug>``),
which no user account ever gets; the service's identity is mapped to it too, so the service can
act as the project once the shared policy has allowed a member's write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import quote

from vre_common.auth import Principal
from vre_common.errors import ConflictError, NotFoundError
from vre_datalake.backends.rucio.rest import RucioAuth, RucioRest
from vre_datalake.config import AccountSettings
from vre_datalake.errors import ScopeExistsError
from vre_datalake.names import SCOPE_MAX, account_name_from

_CACHE_SIZE = 10_000


def oidc_identity(principal: Principal) -> str:
    """Rucio's key of an OIDC identity."""
    return f"SUB={principal.subject}, ISS={principal.issuer}"


class RucioAccounts:
    """Maps principals to accounts (cached) and provisions new ones with the service's rights."""

    def __init__(
        self,
        rest: RucioRest,
        settings: AccountSettings,
        *,
        admin: RucioAuth,
        reserved_prefixes: Sequence[str] = (),
    ) -> None:
        self._rest = rest
        self._settings = settings
        self._admin = admin
        self._reserved = tuple(reserved_prefixes)
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def scope_of(self, account: str) -> str:
        """The user's own scope."""
        return f"{self._settings.scope_prefix}{account}"

    async def account_for(self, principal: Principal) -> str:
        """The account of ``principal``, created with its scope and limits if none exists."""
        key = principal.key
        account = self._cached(key)
        if account is not None:
            return account
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            account = self._cached(key)
            if account is None:
                account = await self._lookup(principal) or await self._create(principal)
                self._remember(key, account)
        self._locks.pop(key, None)
        return account

    def forget(self, principal: Principal) -> None:
        """Drop the cached mapping (e.g. after Rucio's database was replaced)."""
        self._cache.pop(principal.key, None)

    async def ensure_service_mapping(self, account: str) -> None:
        """Map the service's userpass identity to ``account`` (idempotent)."""
        await self._add_identity(account, self._rest.settings.service_username, "USERPASS")

    def _cached(self, key: str) -> str | None:
        account = self._cache.get(key)
        if account is not None:
            self._cache.move_to_end(key)
        return account

    def _remember(self, key: str, account: str) -> None:
        self._cache[key] = account
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _lookup(self, principal: Principal) -> str | None:
        accounts = await self._rest.json(
            "GET",
            "/identities/accounts",
            auth=self._admin,
            operation="list_accounts_for_identity",
            params={"identity_key": oidc_identity(principal), "type": "OIDC"},
        )
        if isinstance(accounts, list) and accounts:
            return str(sorted(accounts)[0])
        return None

    def _candidates(self, principal: Principal) -> list[str]:
        limit = SCOPE_MAX - len(self._settings.scope_prefix)
        base = account_name_from(principal.username, max_length=limit)
        if base.startswith(self._reserved):  # project accounts' names are never a user's
            base = account_name_from("u-" + base, max_length=limit)
        names = [base]
        for n in range(2, 20):
            suffix = f"-{n}"
            names.append(base[: limit - len(suffix)].rstrip("-_") + suffix)
        digest = hashlib.sha256(principal.key.encode()).hexdigest()[:8]
        names.append(base[: limit - 9].rstrip("-_") + "-" + digest)
        return names

    async def _create(self, principal: Principal) -> str:
        email = principal.email or f"{principal.username}@{self._settings.email_domain}"
        for account in self._candidates(principal):
            try:
                await self._rest.request(
                    "POST",
                    f"/accounts/{quote(account)}",
                    auth=self._admin,
                    operation="add_account",
                    json_body={"type": "USER", "email": email},
                )
            except ConflictError:
                continue  # taken by someone else: try the next name
            await self._add_identity(account, oidc_identity(principal), "OIDC", email=email)
            await self.ensure_service_mapping(account)
            await self._provision(account)
            return account
        raise ConflictError(f"no free Rucio account name for {principal.username!r}")

    async def _add_identity(
        self, account: str, identity: str, authtype: str, *, email: str | None = None
    ) -> None:
        body: dict[str, object] = {
            "identity": identity,
            "authtype": authtype,
            "email": email or f"{account}@{self._settings.email_domain}",
            "default": False,
        }
        if authtype == "USERPASS":
            body["password"] = self._rest.settings.service_password.get_secret_value()
        with contextlib.suppress(ConflictError):  # mapped already
            await self._rest.request(
                "POST",
                f"/accounts/{quote(account)}/identities",
                auth=self._admin,
                operation="add_identity",
                json_body=body,
            )

    async def _provision(self, account: str) -> None:
        scope = self.scope_of(account)
        with contextlib.suppress(ConflictError):  # exists already
            await self._add_scope(account, scope)
        await self._set_limits(account, self._settings.default_limit_bytes)

    async def _add_scope(self, account: str, scope: str) -> None:
        await self._rest.request(
            "POST",
            f"/accounts/{quote(account)}/scopes/{quote(scope)}",
            auth=self._admin,
            operation="add_scope",
        )

    async def provision_project(self, scope: str, account: str, quota_bytes: int | None) -> None:
        """Create a project's GROUP account (if missing), its mapping, limits, then its scope.

        The scope comes last so that a run interrupted half-way is completed by the next
        call; once the scope exists the call answers ScopeExistsError.
        """
        try:
            await self._rest.request(
                "POST",
                f"/accounts/{quote(account)}",
                auth=self._admin,
                operation="add_account",
                json_body={"type": "GROUP", "email": f"{account}@{self._settings.email_domain}"},
            )
        except ConflictError:
            info = await self._rest.json(
                "GET", f"/accounts/{quote(account)}", auth=self._admin, operation="get_account"
            )
            if not str((info or {}).get("account_type", "")).upper().endswith("GROUP"):
                raise ConflictError(
                    f"the Rucio account {account} exists and is not a project account"
                ) from None
        await self.ensure_service_mapping(account)
        await self._set_limits(
            account, quota_bytes if quota_bytes is not None else self._settings.default_limit_bytes
        )
        try:
            await self._add_scope(account, scope)
        except ConflictError:
            raise ScopeExistsError(f"the scope {scope} exists") from None

    async def _set_limits(self, account: str, limit: int | None) -> None:
        if limit is None:
            return
        try:
            rses = [
                item["rse"]
                async for item in self._rest.stream(
                    "GET",
                    "/rses/",
                    auth=self._admin,
                    operation="list_rses",
                    params={"expression": self._settings.limit_rse_expression},
                )
            ]
        except NotFoundError:
            rses = []
        for rse in rses:
            await self._rest.request(
                "POST",
                f"/accountlimits/local/{quote(account)}/{quote(rse)}",
                auth=self._admin,
                operation="set_local_account_limit",
                json_body={"bytes": limit},
            )
