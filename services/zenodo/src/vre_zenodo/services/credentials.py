"""CredentialService: each user's personal Zenodo token, encrypted at rest, never logged."""

from __future__ import annotations

from vre_common.auth import Principal
from vre_common.db import utcnow
from vre_common.errors import InvalidInputError
from vre_zenodo.backends.base import ZenodoPort
from vre_zenodo.crypto import TokenCipher, UndecryptableTokenError
from vre_zenodo.errors import (
    TOKEN_HINT,
    ZenodoForbiddenError,
    ZenodoTokenMissingError,
    ZenodoTokenRejectedError,
)
from vre_zenodo.models import CredentialsStatus
from vre_zenodo.storage.credentials import CredentialStore


class CredentialService:
    """Register, check and use the caller's Zenodo token."""

    def __init__(
        self,
        *,
        store: CredentialStore,
        cipher: TokenCipher,
        zenodo: ZenodoPort,
        zenodo_url: str,
        verify: bool,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._zenodo = zenodo
        self._zenodo_url = zenodo_url
        self._verify = verify

    async def register(self, user: Principal, token: str) -> CredentialsStatus:
        """Store ``token`` for the caller, after Zenodo accepted it (when verification is on)."""
        token = token.strip()
        verified_at = None
        if self._verify:
            try:
                await self._zenodo.list_depositions(token, page=1, size=1)
            except ZenodoTokenRejectedError as exc:
                raise InvalidInputError(
                    f"Zenodo ({self._zenodo_url}) does not accept this token",
                    errors=[{"loc": ["body", "token"], "msg": "rejected by Zenodo (401)",
                             "type": "value_error"}],
                ) from exc  # fmt: skip
            except ZenodoForbiddenError as exc:
                raise InvalidInputError(
                    "Zenodo accepts this token but not for depositions: create one with the "
                    "scopes deposit:write and deposit:actions",
                    errors=[{"loc": ["body", "token"], "msg": "lacks the deposit scopes",
                             "type": "value_error"}],
                ) from exc  # fmt: skip
            verified_at = utcnow()
        stored = await self._store.put(
            user.key, self._cipher.encrypt(token), self._zenodo_url, verified_at
        )
        return CredentialsStatus(
            registered=True,
            zenodo_url=stored.zenodo_url,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            verified_at=stored.verified_at,
        )

    async def status(self, user: Principal) -> CredentialsStatus:
        """Whether a token is registered, and when (never the token)."""
        stored = await self._store.get(user.key)
        if stored is None:
            return CredentialsStatus(registered=False, zenodo_url=self._zenodo_url)
        return CredentialsStatus(
            registered=stored.zenodo_url == self._zenodo_url,
            zenodo_url=stored.zenodo_url,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            verified_at=stored.verified_at,
        )

    async def forget(self, user: Principal) -> None:
        """Delete the caller's token (no error if there was none)."""
        await self._store.delete(user.key)

    async def optional_token(self, user: Principal) -> str | None:
        """The caller's token for the configured Zenodo, or None."""
        stored = await self._store.get(user.key)
        if stored is None or stored.zenodo_url != self._zenodo_url:
            return None
        try:
            return self._cipher.decrypt(stored.token_encrypted)
        except UndecryptableTokenError:
            return None

    async def token(self, user: Principal) -> str:
        """The caller's token; 403 with what to do when there is none that works."""
        stored = await self._store.get(user.key)
        if stored is None:
            raise ZenodoTokenMissingError(f"this needs your personal Zenodo token; {TOKEN_HINT}")
        if stored.zenodo_url != self._zenodo_url:
            raise ZenodoTokenMissingError(
                f"your token was registered for {stored.zenodo_url}, this service now uses "
                f"{self._zenodo_url}; {TOKEN_HINT}"
            )
        try:
            return self._cipher.decrypt(stored.token_encrypted)
        except UndecryptableTokenError as exc:
            raise ZenodoTokenMissingError(
                f"your stored token can no longer be decrypted (the service key changed); "
                f"{TOKEN_HINT}"
            ) from exc
