"""RSEs and scopes: what storage exists and which namespaces the caller can use."""

from __future__ import annotations

from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.models import Identity, Rse, Scope
from vre_datalake.names import check_rse
from vre_datalake.services.policy import ScopePolicy


class CatalogueService:
    """Read-only views of RSEs and scopes."""

    def __init__(self, *, backend: DatalakeBackend, policy: ScopePolicy) -> None:
        self._backend = backend
        self._policy = policy

    async def list_rses(self, actor: Actor, expression: str | None) -> list[Rse]:
        """Every RSE (matching ``expression``), with attributes and space."""
        return await self._backend.list_rses(actor, expression)

    async def get_rse(self, actor: Actor, rse: str) -> Rse:
        """One RSE; 404 if unknown."""
        return await self._backend.get_rse(actor, check_rse(rse))

    async def list_scopes(self, actor: Actor) -> list[Scope]:
        """Every scope the caller may see: project scopes of private projects the caller is
        not in are left out; the caller's own scope and writable project scopes are ``mine``."""
        return await self._policy.visible_scopes(actor, await self._backend.list_scopes(actor))

    def identity(self, actor: Actor) -> Identity:
        """The caller's account and own scope."""
        return Identity(account=actor.account, scope=actor.scope)
