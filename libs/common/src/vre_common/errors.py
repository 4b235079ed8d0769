"""The VRE's error hierarchy: each error knows its HTTP status, slug and title.

Services raise these (never ``HTTPException``); :mod:`vre_common.problems` renders every one
of them as an RFC 9457 ``application/problem+json`` response.

- ``VreError``: base; ``status`` 500 only for genuinely unexpected states.
  - 4xx: ``InvalidInputError`` (422, with field ``errors``), ``NotFoundError`` (404),
    ``ConflictError`` (409), ``ForbiddenError`` (403), ``InvalidTokenError`` (401),
    ``InsufficientScopeError`` (403), ``PayloadTooLargeError`` (413), ``RateLimitedError``
    (429), ``QuotaExceededError`` (507 or 403 with the numbers).
  - 5xx from a backend: ``BackendUnavailableError`` (503, Retry-After; its
    ``ServiceNotConfiguredError`` when a VRE service an operation needs has no URL set),
    ``BackendTimeoutError`` (504), ``BadGatewayError`` (502: the backend answered nonsense).
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://vre.example.org/problems/"


class VreError(Exception):
    """Base of every error a VRE service raises on purpose."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type_uri(self) -> str:
        """The problem type URI (stable, documents the class of error)."""
        return PROBLEM_BASE + self.slug


class InvalidInputError(VreError):
    """The request is well-formed but its content is wrong; ``errors`` lists each field."""

    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class BadRequestError(VreError):
    """The request cannot be parsed (malformed body, bad header)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"


class NotFoundError(VreError):
    """The resource does not exist, or its existence is private to the caller."""

    status = 404
    slug = "not-found"
    title = "Not found"


class ConflictError(VreError):
    """The resource exists already, or its state forbids the change."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class ForbiddenError(VreError):
    """The caller is known but may not do this."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class InvalidTokenError(VreError):
    """The bearer token is missing, malformed, expired or not trusted."""

    status = 401
    slug = "invalid-token"
    title = "Invalid token"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        error = "invalid_token" if detail != "missing bearer token" else None
        challenge = 'Bearer realm="vre"'
        if error:
            challenge += f', error="{error}", error_description="{_quote(detail)}"'
        self.headers.setdefault("WWW-Authenticate", challenge)


class InsufficientScopeError(VreError):
    """The token is valid but does not carry the scope this operation needs."""

    status = 403
    slug = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, detail: str, *, scope: str = "", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault(
            "WWW-Authenticate", f'Bearer realm="vre", error="insufficient_scope", scope="{scope}"'
        )


class PayloadTooLargeError(VreError):
    """The request body is larger than this route accepts."""

    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UriTooLongError(VreError):
    """The request's query string is longer than the gateway accepts."""

    status = 414
    slug = "uri-too-long"
    title = "URI too long"


class RateLimitedError(VreError):
    """Too many requests from this caller; retry after the given number of seconds."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers["Retry-After"] = str(max(1, retry_after))


class QuotaExceededError(VreError):
    """The caller's storage quota does not allow this; ``extra`` holds the numbers."""

    status = 507
    slug = "quota-exceeded"
    title = "Quota exceeded"


class BackendError(VreError):
    """Base of failures of an external system (Rucio, REANA, Zenodo, IAM, a service)."""

    status = 502
    slug = "bad-gateway"
    title = "Backend error"


class BadGatewayError(BackendError):
    """The backend answered, but with an error or something we cannot use."""


class BackendUnavailableError(BackendError):
    """The backend cannot be reached; retry later."""

    status = 503
    slug = "backend-unavailable"
    title = "Backend unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers["Retry-After"] = str(retry_after)


class ServiceNotConfiguredError(BackendUnavailableError):
    """A VRE service this operation needs is not configured."""

    slug = "service-not-configured"
    title = "Service not configured"


class BackendTimeoutError(BackendError):
    """The backend did not answer within the configured timeout."""

    status = 504
    slug = "backend-timeout"
    title = "Backend timeout"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")[:200]
