"""Async calls to Rucio's REST API: auth tokens, JSON and streamed NDJSON, error translation.

Rucio answers errors with an ``ExceptionClass`` (header and JSON body); :func:`translate`
maps each class to our errors once, here. Transport failures go through
:func:`vre_common.http.backend_call` (unreachable → 503 with Retry-After, timeout → 504).
List endpoints stream ``application/x-json-stream`` (one JSON document per line); they are
parsed line by line so a listing of any length costs flat memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from vre_common.errors import (
    BackendUnavailableError,
    BadGatewayError,
    ConflictError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    VreError,
)
from vre_common.http import backend_call
from vre_datalake.config import RucioSettings, ssl_verify
from vre_datalake.errors import (
    ContentConflictError,
    DidExistsError,
    DidNotFoundError,
    QuotaError,
    ReplicaNotFoundError,
    RseNotFoundError,
    RucioRefusedError,
    RuleNotFoundError,
    ScopeNotFoundError,
)

ACCEPT = "application/x-json-stream, application/json;q=0.9, */*;q=0.1"

_NOT_FOUND: dict[str, type[VreError]] = {
    "DataIdentifierNotFound": DidNotFoundError,
    "ScopeNotFound": ScopeNotFoundError,
    "RSENotFound": RseNotFoundError,
    "RuleNotFound": RuleNotFoundError,
    "ReplicaNotFound": ReplicaNotFoundError,
    "AccountNotFound": NotFoundError,
    "IdentityNotFound": NotFoundError,
    "RSEProtocolNotSupported": NotFoundError,
}
_CONFLICT: dict[str, type[VreError]] = {
    "DataIdentifierAlreadyExists": DidExistsError,
    "Duplicate": ConflictError,
    "DuplicateRule": ConflictError,
    "FileAlreadyExists": ConflictError,
    "DuplicateContent": ConflictError,
    "FileConsistencyMismatch": ContentConflictError,
    "UnsupportedOperation": ConflictError,
    "ScopeAlreadyExists": ConflictError,
    "AccountAlreadyExists": ConflictError,
}
_INVALID = {
    "InvalidObject",
    "InvalidValueForKey",
    "InvalidMetadata",
    "InvalidRSEExpression",
    "InvalidType",
    "InvalidReplicationRule",
    "DIDFilterSyntaxError",
    "KeyNotFound",
    "InvalidPath",
    "InvalidRuleWeight",
    "StagingAreaRuleRequiresLifetime",
    "RSEWriteBlocked",
    "InputValidationError",
    "InvalidScopeName",
    "InvalidSchema",
    "UnsupportedKeyType",
    "UnsupportedValueType",
    "ManualRuleApprovalBlocked",
    "RSEOverQuota",
    "ValueError",
    "TypeError",
}
_QUOTA = {"InsufficientAccountLimit", "InsufficientTargetRSEs"}
_AUTH = {"CannotAuthenticate", "CannotAuthorize"}
_MAX_MESSAGE = 400


BUSY_RETRIES = 5  # 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s at most


def _database_busy(response: httpx.Response) -> bool:
    """Rucio's answer to a transaction that SQLite refused because another held the lock."""
    if response.status_code < 500:
        return False
    cls, message = rucio_error(response)
    return "database is locked" in message or cls == "DatabaseException"


def rucio_error(response: httpx.Response) -> tuple[str, str]:
    """The ``(ExceptionClass, ExceptionMessage)`` of an error answer."""
    cls = response.headers.get("ExceptionClass", "")
    msg = response.headers.get("ExceptionMessage", "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        cls = str(body.get("ExceptionClass") or cls)
        msg = str(body.get("ExceptionMessage") or msg)
    msg = msg or response.reason_phrase
    if len(msg) > _MAX_MESSAGE:  # jsonschema errors quote whole schemas
        msg = msg[:_MAX_MESSAGE] + " …"
    return cls or f"HTTP{response.status_code}", msg


def translate(  # noqa: PLR0911 - one return per family of Rucio errors
    response: httpx.Response,
    operation: str,
    *,
    user_token: bool = False,
    field: str | None = None,
) -> VreError:
    """Our error for a Rucio error answer (``field`` names the input a 422 is about)."""
    cls, msg = rucio_error(response)
    status = response.status_code
    detail = f"{msg} ({operation})" if msg else f"Rucio answered {status} ({operation})"
    if cls in _NOT_FOUND:
        return _NOT_FOUND[cls](msg or detail)
    if cls in _CONFLICT:
        return _CONFLICT[cls](msg or detail)
    if cls in _QUOTA:
        return QuotaError(
            "?", limit_bytes=None, used_bytes=None, requested_bytes=None, detail=msg or detail
        )
    if cls in _INVALID or status == 400:
        errors = [{"loc": [field], "msg": msg, "type": "value_error.rucio"}] if field else None
        return InvalidInputError(msg or detail, errors=errors)
    if cls == "AccessDenied":
        return RucioRefusedError(msg or detail)
    if cls in _AUTH or status == 401:
        if user_token:
            return InvalidTokenError(f"Rucio did not accept the token: {msg}")
        return BadGatewayError(f"the service cannot log in to Rucio: {msg} ({operation})")
    if status == 503:
        return BackendUnavailableError(f"Rucio is unavailable ({operation})")
    if status == 404:
        return NotFoundError(msg or detail)
    return BadGatewayError(f"Rucio failed: {cls}: {msg} ({operation})")


class RucioAuth(Protocol):
    """Supplies the ``X-Rucio-Auth-Token`` of one identity."""

    user_token: bool

    async def token(self) -> str:
        """A valid token."""
        ...

    def invalidate(self) -> None:
        """Forget a cached token Rucio refused."""
        ...


class BearerAuth:
    """The caller's own token (``token`` identity mode)."""

    user_token = True

    def __init__(self, bearer: str) -> None:
        self._bearer = bearer

    async def token(self) -> str:
        """The caller's token as it came."""
        return str(self._bearer)

    def invalidate(self) -> None:
        """Nothing to forget: the caller's token is what it is."""


class RucioRest:
    """One pooled async client for a Rucio server, with a per-account token cache."""

    def __init__(self, settings: RucioSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=20,
                keepalive_expiry=settings.keepalive_expiry_seconds,
            ),
            verify=ssl_verify(settings.verify),
            follow_redirects=False,
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def _unavailable(self, error: BackendUnavailableError) -> BackendUnavailableError:
        error.headers["Retry-After"] = str(self.settings.retry_after_seconds)
        return error

    # ------------------------------------------------------------------ auth

    def account_auth(self, account: str) -> AccountAuth:
        """Auth as ``account`` through the service's userpass identity."""
        return AccountAuth(self, account)

    async def userpass_token(self, account: str) -> str:
        """A token for ``account`` from the service's userpass identity, cached until expiry."""
        cached = self._tokens.get(account)
        margin = self.settings.token_refresh_margin_seconds
        if cached and cached[1] - margin > time.time():
            return cached[0]
        lock = self._locks.setdefault(account, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(account)
            if cached and cached[1] - margin > time.time():
                return cached[0]
            headers = {
                "X-Rucio-Account": account,
                "X-Rucio-Username": self.settings.service_username,
                "X-Rucio-Password": self.settings.service_password.get_secret_value(),
            }
            try:
                async with backend_call("rucio", "auth_userpass"):
                    response = await self._client.get(
                        f"{self.settings.auth_base}/auth/userpass", headers=headers
                    )
            except BackendUnavailableError as exc:
                raise self._unavailable(exc) from exc.__cause__
            token: str | None = response.headers.get("X-Rucio-Auth-Token")
            if response.status_code != 200 or not token:
                raise translate(response, f"login as {account}")
            self._tokens[account] = (token, _expiry(response))
            return token

    def forget_token(self, account: str) -> None:
        """Drop a cached token (Rucio refused it, or the account's identities changed)."""
        self._tokens.pop(account, None)

    # ------------------------------------------------------------------ calls

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: RucioAuth | None,
        operation: str,
        params: Any = None,
        json_body: Any = None,
        ok: Iterable[int] = (200, 201, 204),
        field: str | None = None,
    ) -> httpx.Response:
        """One call; a refused cached token is renewed once; errors are translated.

        A Rucio on SQLite (the embedded mode) sometimes answers "database is locked" when
        its daemons write at the same moment; Rucio rolled that transaction back, so the
        call is repeated a few times with a short back-off before the error is given.
        """
        accepted = set(ok)
        busy_retries = 0
        attempt = 0
        while True:
            attempt += 1
            headers = {"Accept": ACCEPT}
            if auth is not None:
                headers["X-Rucio-Auth-Token"] = await auth.token()
            try:
                async with backend_call("rucio", operation):
                    response = await self._client.request(
                        method,
                        self.base + path,
                        params=params,
                        content=None if json_body is None else json.dumps(json_body),
                        headers=headers,
                    )
            except BackendUnavailableError as exc:
                raise self._unavailable(exc) from exc.__cause__
            if response.status_code in accepted:
                return response
            if response.status_code == 401 and auth is not None and attempt == 1:
                cls, _ = rucio_error(response)
                if cls in _AUTH and not auth.user_token:
                    auth.invalidate()
                    continue
            if _database_busy(response) and busy_retries < BUSY_RETRIES:
                busy_retries += 1
                await asyncio.sleep(0.05 * 2**busy_retries)
                continue
            raise translate(
                response, operation, user_token=bool(auth and auth.user_token), field=field
            )

    async def json(
        self,
        method: str,
        path: str,
        *,
        auth: RucioAuth | None,
        operation: str,
        params: Any = None,
        json_body: Any = None,
        field: str | None = None,
    ) -> Any:
        """One call answered with JSON (the first document of an NDJSON answer)."""
        response = await self.request(
            method,
            path,
            auth=auth,
            operation=operation,
            params=params,
            json_body=json_body,
            field=field,
        )
        text = response.text.strip()
        if not text:
            return None
        try:
            if response.headers.get("content-type", "").startswith("application/x-json-stream"):
                return json.loads(text.splitlines()[0])
            return json.loads(text)
        except ValueError as exc:
            raise BadGatewayError(f"Rucio sent invalid JSON ({operation})") from exc

    async def stream(
        self,
        method: str,
        path: str,
        *,
        auth: RucioAuth | None,
        operation: str,
        params: Any = None,
        json_body: Any = None,
        field: str | None = None,
    ) -> AsyncIterator[Any]:
        """The documents of an NDJSON answer, one by one, as they arrive."""
        for attempt in (1, 2):
            headers = {"Accept": ACCEPT}
            if auth is not None:
                headers["X-Rucio-Auth-Token"] = await auth.token()
            request = self._client.build_request(
                method,
                self.base + path,
                params=params,
                content=None if json_body is None else json.dumps(json_body),
                headers=headers,
            )
            try:
                async with backend_call("rucio", operation):
                    response = await self._client.send(request, stream=True)
                    try:
                        if response.status_code != 200:
                            await response.aread()
                            cls, _ = rucio_error(response)
                            if (
                                response.status_code == 401
                                and cls in _AUTH
                                and auth is not None
                                and not auth.user_token
                                and attempt == 1
                            ):
                                auth.invalidate()
                                continue
                            raise translate(
                                response,
                                operation,
                                user_token=bool(auth and auth.user_token),
                                field=field,
                            )
                        async for line in response.aiter_lines():
                            if line.strip():
                                try:
                                    yield json.loads(line)
                                except ValueError as exc:
                                    raise BadGatewayError(
                                        f"Rucio sent invalid JSON ({operation})"
                                    ) from exc
                        return
                    finally:
                        await response.aclose()
            except BackendUnavailableError as exc:
                raise self._unavailable(exc) from exc.__cause__


class AccountAuth:
    """Tokens for one account through the service's userpass identity (``service`` mode)."""

    user_token = False

    def __init__(self, rest: RucioRest, account: str) -> None:
        self._rest = rest
        self.account = account

    async def token(self) -> str:
        """A cached or fresh token for the account."""
        return await self._rest.userpass_token(self.account)

    def invalidate(self) -> None:
        """Forget the cached token (Rucio refused it)."""
        self._rest.forget_token(self.account)


def _expiry(response: httpx.Response) -> float:
    value = response.headers.get("X-Rucio-Auth-Token-Expires")
    if value:
        try:
            return parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time() + 3600
