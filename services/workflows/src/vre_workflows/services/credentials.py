"""Users' REANA tokens: registered once, checked with REANA, stored encrypted, never logged."""

from __future__ import annotations

from pathlib import Path

from vre_common.auth import Principal
from vre_common.crypto import TokenCipher
from vre_common.crypto import load_or_create_key as create_key_file
from vre_common.db import Database
from vre_common.errors import InvalidInputError, NotFoundError
from vre_workflows.backends.reana import ReanaServers, TokenLookup
from vre_workflows.config import ReanaSettings
from vre_workflows.errors import ReanaCredentialsMissingError
from vre_workflows.models import ReanaCredentials, ReanaCredentialsIn, ReanaCredentialsList
from vre_workflows.storage.credentials import CredentialStore


def load_or_create_key(settings: ReanaSettings, data_dir: Path) -> bytes:
    """The Fernet key: from settings, else a key file made once in the data folder (0600)."""
    if settings.credentials_key is not None:
        return settings.credentials_key.get_secret_value().encode()
    return create_key_file(data_dir / "credentials.key")


class CredentialService:
    """Register, list and use a user's REANA tokens."""

    def __init__(
        self, *, store: CredentialStore, cipher: TokenCipher, servers: ReanaServers
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._servers = servers

    async def register(self, user: Principal, body: ReanaCredentialsIn) -> ReanaCredentials:
        """Check the token with REANA (``GET /api/you``), then store it encrypted."""
        client = self._servers.get(body.server)
        token = body.token.get_secret_value().strip()
        if not token:
            raise InvalidInputError(
                "the token is empty",
                errors=[{"loc": ["token"], "msg": "empty", "type": "value_error"}],
            )
        you = await client.you(token)
        reana_user = you.get("username") or you.get("email")
        await self._store.put(
            user.key,
            client.name,
            self._cipher.encrypt(token),
            str(reana_user) if reana_user else None,
        )
        stored = await self._store.get(user.key, client.name)
        assert stored is not None
        return ReanaCredentials(
            server=client.name,
            url=client.url,
            reana_user=stored.reana_user,
            registered_at=stored.updated_at,
        )

    async def list_all(self, user: Principal) -> ReanaCredentialsList:
        """The servers the user has a token for."""
        items = []
        for row in await self._store.list_all(user.key):
            client = self._servers.clients.get(row.server)
            items.append(
                ReanaCredentials(
                    server=row.server,
                    url=client.url if client else "",
                    reana_user=row.reana_user,
                    registered_at=row.updated_at,
                )
            )
        return ReanaCredentialsList(items=items)

    async def delete(self, user: Principal, server: str | None) -> None:
        """Forget the user's token for a server."""
        name = server or self._servers.default or ""
        if not await self._store.delete(user.key, name):
            raise NotFoundError(f"no REANA token is registered for server {name!r}")

    async def token_for(self, owner: str, server: str) -> str:
        """The decrypted token (kept in memory only); 409 if none is registered."""
        stored = await self._store.get(owner, server)
        token = self._cipher.decrypt_or_none(stored.token_encrypted) if stored else None
        if token is None:
            raise ReanaCredentialsMissingError(
                f"no usable REANA token is registered for server {server!r}: register one with "
                "PUT /credentials/reana"
            )
        return token


def stored_tokens(db: Database, cipher: TokenCipher, servers: ReanaServers) -> TokenLookup:
    """The REANA backend's way to a run owner's registered token (its own short transaction)."""

    async def lookup(owner: str, server: str) -> str:
        async with db.transaction() as session:
            service = CredentialService(
                store=CredentialStore(session), cipher=cipher, servers=servers
            )
            return await service.token_for(owner, server)

    return lookup
