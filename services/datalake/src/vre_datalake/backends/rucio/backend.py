"""``RucioDatalakeBackend``: the catalogue port over Rucio's REST API (async httpx, no SDK).

One module per resource (:mod:`.accounts`, :mod:`.rses`, :mod:`.dids`, :mod:`.replicas`,
:mod:`.rules`), each a set of primitives: one Rucio request each, translated into our models
and errors. What an operation means as a whole (an upload, its clean-up) is the services'.
Identities: see :class:`~vre_datalake.backends.rucio.common.RucioCalls`. Writes in a project
scope run as the project's GROUP account (the owner of the scope, so Rucio's generic policy
allows adding DIDs, attaching and setting metadata there, and the upload's rule counts
against the project's limit) — after the shared project policy allowed the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

from vre_datalake.backends.rucio.accounts import AccountCalls
from vre_datalake.backends.rucio.dids import DidCalls
from vre_datalake.backends.rucio.provisioning import RucioAccounts
from vre_datalake.backends.rucio.replicas import ReplicaCalls
from vre_datalake.backends.rucio.rest import RucioRest
from vre_datalake.backends.rucio.rses import RseCalls
from vre_datalake.backends.rucio.rules import RuleCalls
from vre_datalake.config import AccountSettings, RucioSettings


class RucioDatalakeBackend(AccountCalls, RseCalls, DidCalls, ReplicaCalls, RuleCalls):
    """The Data Lake catalogue on Rucio."""

    def __init__(
        self,
        rest: RucioRest,
        *,
        settings: RucioSettings,
        accounts: AccountSettings,
        reserved_account_prefixes: Sequence[str] = (),
    ) -> None:
        self._rest = rest
        self._settings = settings
        self._token_mode = settings.identity_mode == "token"
        self._service = rest.account_auth(settings.service_account)
        self._accounts = RucioAccounts(
            rest, accounts, admin=self._service, reserved_prefixes=reserved_account_prefixes
        )
        self._scope_prefix = accounts.scope_prefix
        self._whoami = {}
        self._scopes = (0.0, set())
        self._templates = {}
        self._meta_plugin = settings.metadata_plugin

    async def ping(self) -> None:
        """``GET /ping`` (no auth)."""
        await self._rest.request("GET", "/ping", auth=None, operation="ping")

    async def aclose(self) -> None:
        """Close the HTTP pool."""
        await self._rest.aclose()
