"""Async calls to Rucio's REST API: auth tokens, JSON and streamed NDJSON, error translation.

Rucio answers errors with an ``ExceptionClass`` (header and JSON body); :func:`translate`
maps each class to our errors once, here. Transport failures go through
:func:`vre_common.http.backend_call` (unreachable → 503 with Retry-After, timeout → 504).
List endpoints stream ``application/x-json-stream`` (one JSON document per line); they are
parsed line by line so a listing of any length costs flat memory.

A pooled keep-alive connection can be closed by Rucio (gunicorn's keep-alive, a restart) just
as a request goes out on it. Such a call is sent again on a fresh connection (tenacity,
:data:`CONNECTION_RETRIES` times): any call whose connection could not be opened (nothing was
sent), and idempotent calls (GET, HEAD, and reads Rucio takes by POST, such as
``/replicas/list``) whose connection was reset or closed before the answer. A non-idempotent
call that was sent is never repeated: Rucio may have done it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Iterable
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from vre_common.errors import (
    BackendUnavailableError,
    BadGatewayError,
    ConflictError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    VreError,
)
from vre_common.http import QueuedTransport, backend_call
from vre_datalake.config import RucioSettings, ssl_verify
from vre_datalake.errors import (
    ContentConflictError,
    DidExistsError,
    DidNotFoundError,
    QuotaError,
    ReplicaNotFoundError,
    RseNotFoundError,
    RucioRefusedError,
    RuleExistsError,
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
    "DuplicateRule": RuleExistsError,
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


CONNECTION_RETRIES = 2  # after a reset or closed connection: 0.05 + 0.1 s of back-off at most
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The request may have reached Rucio: only idempotent calls are sent again after these.
_LOST_AFTER_SENDING = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

log = structlog.get_logger("vre.datalake.rucio")


def may_resend(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether a call that failed with ``exc`` can be sent again on a fresh connection."""
    if isinstance(exc, httpx.ConnectError):  # the connection never opened: nothing was sent
        return True
    return idempotent and isinstance(exc, _LOST_AFTER_SENDING)


def _log_resend(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("rucio_call_resent", attempt=state.attempt_number, error=type(exc).__name__)


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
            timeout=httpx.Timeout(
                settings.read_timeout,
                connect=settings.connect_timeout,
                pool=settings.pool_timeout,
            ),
            transport=QueuedTransport(  # calls beyond max_connections wait in its queue
                httpx.AsyncHTTPTransport(
                    verify=ssl_verify(settings.verify),
                    limits=httpx.Limits(
                        max_connections=settings.max_connections,
                        max_keepalive_connections=settings.max_connections,
                        keepalive_expiry=settings.keepalive_expiry_seconds,
                    ),
                ),
                settings.max_connections,
            ),
            follow_redirects=False,
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _send(
        self, request: httpx.Request, *, idempotent: bool, stream: bool = False
    ) -> httpx.Response:
        """Send ``request``, again on a fresh connection when :func:`may_resend` allows."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: may_resend(exc, idempotent=idempotent)),
            stop=stop_after_attempt(1 + CONNECTION_RETRIES),
            wait=wait_exponential(multiplier=0.05, max=0.5),
            before_sleep=_log_resend,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._client.send(request, stream=stream)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _unavailable(self, error: BackendUnavailableError) -> BackendUnavailableError:
        error.headers["Retry-After"] = str(self.settings.retry_after_seconds)
        return error

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
            request = self._client.build_request(
                "GET", f"{self.settings.auth_base}/auth/userpass", headers=headers
            )
            try:
                async with backend_call("rucio", "auth_userpass"):
                    response = await self._send(request, idempotent=True)
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

    async def _build(
        self,
        method: str,
        path: str,
        *,
        auth: RucioAuth | None,
        params: Any,
        json_body: Any,
    ) -> httpx.Request:
        """A call to the Rucio API with ``auth``'s token (asked again for every attempt)."""
        headers = {"Accept": ACCEPT}
        if auth is not None:
            headers["X-Rucio-Auth-Token"] = await auth.token()
        return self._client.build_request(
            method,
            self.base + path,
            params=params,
            content=None if json_body is None else json.dumps(json_body),
            headers=headers,
        )

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
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """One call; a refused cached token is renewed once; errors are translated.

        ``idempotent`` (default: by method) says whether the call may be sent again after
        its connection was reset (see the module docstring).
        """
        accepted = set(ok)
        resendable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        for attempt in (1, 2):
            request = await self._build(method, path, auth=auth, params=params, json_body=json_body)
            try:
                async with backend_call("rucio", operation):
                    response = await self._send(request, idempotent=resendable)
            except BackendUnavailableError as exc:
                raise self._unavailable(exc) from exc.__cause__
            if response.status_code in accepted:
                return response
            if _renews_token(response, auth, attempt):
                continue
            raise translate(
                response, operation, user_token=bool(auth and auth.user_token), field=field
            )
        raise AssertionError("unreachable: the second attempt returns or raises")

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
        idempotent: bool | None = None,
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
            idempotent=idempotent,
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
        idempotent: bool | None = None,
    ) -> AsyncGenerator[Any, None]:
        """The documents of an NDJSON answer, one by one, as they arrive.

        Only the sending is repeated after a reset connection (``idempotent`` as in
        :meth:`request`): once documents have been given out, a broken stream is an error.
        """
        resendable = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        for attempt in (1, 2):
            request = await self._build(method, path, auth=auth, params=params, json_body=json_body)
            try:
                async with backend_call("rucio", operation):
                    response = await self._send(request, idempotent=resendable, stream=True)
                    try:
                        if response.status_code != 200:
                            await response.aread()
                            if _renews_token(response, auth, attempt):
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


def _renews_token(response: httpx.Response, auth: RucioAuth | None, attempt: int) -> bool:
    """Whether Rucio refused, at the first attempt, a token we cached (never a user's own):
    it is forgotten, and the call is sent again with a fresh one."""
    if response.status_code != 401 or auth is None or auth.user_token or attempt != 1:
        return False
    cls, _ = rucio_error(response)
    if cls not in _AUTH:
        return False
    auth.invalidate()
    return True


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
