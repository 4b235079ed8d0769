"""Browser sessions: tokens from the sign-in kept server-side, encrypted, renewed on demand.

The browser holds only an opaque, HttpOnly cookie; the dashboard asks ``/auth/session`` for a
short-lived access token it keeps in memory and sends as ``Authorization: Bearer`` to the
same public API a script calls. The refresh token never leaves the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from vre_common.auth import Principal, TokenValidator
from vre_common.crypto import TokenCipher, UndecryptableTokenError
from vre_common.db import Database
from vre_common.errors import VreError
from vre_gateway.config import WebSettings
from vre_gateway.storage.schema import WebSessionRow
from vre_gateway.storage.web_sessions import WebSessionStore
from vre_gateway.web.oidc import OidcClient, TokenResponse


class SignInRequiredError(VreError):
    """No browser session, or it ended: the user signs in again."""

    status = 401
    slug = "sign-in-required"
    title = "Sign-in required"


class WebUser(BaseModel):
    """Who is signed in."""

    sub: str
    username: str
    name: str | None = None
    email: str | None = None
    groups: list[str] = Field(default_factory=list)


class SessionView(BaseModel):
    """What the dashboard gets from ``GET /auth/session``."""

    access_token: str
    expires_at: int = Field(description="When the access token expires (epoch seconds).")
    session_expires_at: int = Field(description="When the user must sign in again.")
    user: WebUser


def session_id(cookie: str) -> str:
    """The stored id of a session cookie (its SHA-256: the table alone opens nothing)."""
    return hashlib.sha256(cookie.encode()).hexdigest()


class WebSessions:
    """Create, read (renewing the access token when close to expiry) and end sessions."""

    def __init__(
        self,
        *,
        database: Database,
        cipher: TokenCipher,
        oidc: OidcClient,
        validator: TokenValidator,
        settings: WebSettings,
    ) -> None:
        self.database = database
        self.cipher = cipher
        self.oidc = oidc
        self.validator = validator
        self.settings = settings
        self._locks: dict[str, asyncio.Lock] = {}

    async def create(self, tokens: TokenResponse) -> tuple[str, Principal]:
        """A new session from the sign-in's tokens: (cookie value, who signed in).

        The access token is validated like any API call's (issuer, signature, audience), so a
        session is never opened with a token the API would refuse.
        """
        principal = await self.validator.validate(tokens.access_token)
        cookie = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        row = WebSessionRow(
            id=session_id(cookie),
            user_key=principal.key,
            username=principal.username,
            access_token=self.cipher.encrypt(tokens.access_token),
            refresh_token=self.cipher.encrypt(tokens.refresh_token)
            if tokens.refresh_token
            else None,
            access_expires_at=datetime.fromtimestamp(principal.expires_at, UTC),
            expires_at=now + timedelta(seconds=self.settings.session_lifetime_seconds),
            created_at=now,
        )
        async with self.database.transaction() as session:
            store = WebSessionStore(session)
            await store.purge_expired(now)
            await store.add(row)
        return cookie, principal

    async def current(self, cookie: str | None) -> SessionView:
        """The session's user and a valid access token (renewed if it expires soon)."""
        if not cookie:
            raise SignInRequiredError("you are not signed in")
        key = session_id(cookie)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # one renewal at a time (refresh tokens may rotate)
                return await self._current(key)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def _current(self, key: str) -> SessionView:
        try:
            return await self._read(key)
        except _SessionEndedError as ended:
            # removed in its own transaction: the read's was rolled back by the exception
            async with self.database.transaction() as session:
                await WebSessionStore(session).remove(key)
            raise SignInRequiredError(ended.reason) from ended.__cause__

    async def _read(self, key: str) -> SessionView:
        now = datetime.now(UTC)
        async with self.database.transaction() as session:
            store = WebSessionStore(session)
            row = await store.get(key)
            if row is None:
                raise SignInRequiredError("your session has ended; sign in again")
            if _aware(row.expires_at) <= now:
                raise _SessionEndedError("your session has expired; sign in again")
            try:
                access = self.cipher.decrypt(row.access_token)
                refresh = self.cipher.decrypt(row.refresh_token) if row.refresh_token else None
            except UndecryptableTokenError as exc:
                raise _SessionEndedError(
                    "your session can no longer be read; sign in again"
                ) from exc
            margin = timedelta(seconds=self.settings.refresh_margin_seconds)
            if _aware(row.access_expires_at) - margin <= now:
                access, refresh = await self._renew(store, row, refresh)
            principal = await self._validate(access)
            return SessionView(
                access_token=access,
                expires_at=principal.expires_at,
                session_expires_at=int(_aware(row.expires_at).timestamp()),
                user=WebUser(
                    sub=principal.subject,
                    username=principal.username,
                    name=principal.name,
                    email=principal.email,
                    groups=principal.groups,
                ),
            )

    async def _renew(
        self, store: WebSessionStore, row: WebSessionRow, refresh: str | None
    ) -> tuple[str, str | None]:
        if refresh is None:
            raise _SessionEndedError("your access has expired; sign in again")
        try:
            tokens = await self.oidc.refresh(refresh)
        except VreError as exc:
            if exc.status == 401:  # the issuer refused: the session is over
                raise _SessionEndedError(f"the sign-in could not be renewed: {exc.detail}") from exc
            raise  # the issuer is down: 503/504, the session stays
        principal = await self._validate(tokens.access_token)
        new_refresh = tokens.refresh_token or refresh
        await store.update_tokens(
            row,
            access_token=self.cipher.encrypt(tokens.access_token),
            refresh_token=self.cipher.encrypt(new_refresh),
            access_expires_at=datetime.fromtimestamp(principal.expires_at, UTC),
        )
        return tokens.access_token, new_refresh

    async def _validate(self, access: str) -> Principal:
        try:
            return await self.validator.validate(access)
        except VreError as exc:
            if exc.status == 401:  # e.g. its signing key was withdrawn
                raise _SessionEndedError(f"your access is no longer valid: {exc.detail}") from exc
            raise

    async def end(self, cookie: str | None) -> None:
        """Sign out (nothing to do without a session)."""
        if cookie:
            async with self.database.transaction() as session:
                await WebSessionStore(session).remove(session_id(cookie))


class _SessionEndedError(Exception):
    """Inside a read: the session must go (and the user sign in again)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
