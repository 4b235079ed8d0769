"""Who may read and write which scope.

For now a user may read and write only their own ``user.<account>`` scope; another existing
scope is 403, an unknown one 404. (Project scopes will come through another policy that
implements the same :class:`ScopePolicy` port.)
"""

from __future__ import annotations

from typing import Literal, Protocol

from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.errors import ScopeForbiddenError, ScopeNotFoundError
from vre_datalake.names import check_scope

Action = Literal["read", "write"]


class ScopePolicy(Protocol):
    """Decides whether an actor may read or write a scope."""

    async def authorize(self, actor: Actor, scope: str, action: Action) -> None:
        """Return if allowed; raise 403 (exists, not allowed) or 404 (unknown scope)."""
        ...


class OwnScopePolicy:
    """Only the caller's own scope, for reading and writing."""

    def __init__(self, backend: DatalakeBackend) -> None:
        self._backend = backend

    async def authorize(self, actor: Actor, scope: str, action: Action) -> None:
        """Own scope: allowed; any other existing scope: 403; unknown: 404."""
        check_scope(scope)
        if scope == actor.scope:
            return
        if await self._backend.scope_exists(actor, scope):
            raise ScopeForbiddenError(f"you may not {action} in the scope {scope}")
        raise ScopeNotFoundError(f"no scope {scope}")
