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

import os
from contextvars import ContextVar
from typing import Any, ClassVar

PROBLEMS_PATH = "/problems/"
"""Where the gateway serves one page per problem type (``/problems/{slug}``)."""

PROBLEM_BASE_ENV = "VRE_PROBLEM_BASE_URI"
"""The variable that sets the base of problem type URIs in every VRE process (the gateway's
setting ``problem_base_uri``; services in their own processes read the same variable)."""

_configured_base: str | None = os.environ.get(PROBLEM_BASE_ENV) or None
_request_origin: ContextVar[str | None] = ContextVar("vre_request_origin", default=None)


def set_problem_base(uri: str | None) -> None:
    """Set (or with None, unset) the base of problem type URIs for this process."""
    global _configured_base  # noqa: PLW0603 - one process-wide setting, set at app creation
    _configured_base = (uri.rstrip("/") + "/") if uri else None


def set_request_origin(origin: str | None) -> object:
    """The origin (``scheme://host``) of the request being served; returns a reset token."""
    return _request_origin.set(origin)


def reset_request_origin(token: object) -> None:
    """Undo :func:`set_request_origin`."""
    _request_origin.reset(token)  # type: ignore[arg-type]


def problem_base() -> str:
    """The base of problem type URIs: the configured one (``VRE_PROBLEM_BASE_URI``), else the
    gateway that answers the request (``{origin}/problems/``), else — outside a request, e.g. a
    job resumed at start-up — the path ``/problems/`` (a relative reference, RFC 9457 §3.1.1)."""
    if _configured_base:
        return _configured_base
    origin = _request_origin.get()
    return (origin + PROBLEMS_PATH) if origin else PROBLEMS_PATH


def problem_type_uri(slug: str) -> str:
    """The type URI of a problem type: its page at the gateway (``…/problems/{slug}``)."""
    return problem_base() + slug


# What a person can do about an error of a status, unless the class says better.
ADVICE_BY_STATUS: dict[int, str] = {
    400: "Fix the request as `detail` says (where: line and column for a body that does not "
    "parse) and send it again.",
    401: "Send a valid access token in the `Authorization: Bearer <token>` header (get a new "
    "one if it expired); the `WWW-Authenticate` header says what was wrong.",
    403: "Ask an owner of the project (or an operator) for the role this needs, or act on "
    "something of your own.",
    404: "Check the identifier in the URL; things you may not see answer 404 too.",
    405: "Use one of the methods listed in the `Allow` header.",
    406: "Ask for a media type the operation produces (see its responses in /openapi.json), or"
    " leave `Accept` out.",
    409: "Read the resource's current state and retry with a change that fits it.",
    411: "Send the body with a `Content-Length` header.",
    413: "Send a smaller body, or use the streaming upload routes for large files.",
    414: "Shorten the query string (send long input in a request body).",
    416: "Ask for a range within the file's size (see `Content-Range` in the answer).",
    415: "Send the body with one of the media types listed in `accepted` (and the `Accept-Post`"
    " / `Accept-Patch` header).",
    422: "Correct each field listed in `errors` (`loc` is where, `msg` what is wrong) and "
    "send the request again.",
    429: "Wait the number of seconds in `Retry-After`, then retry.",
    500: "Retry later; if it happens again, report it with the `request_id`.",
    502: "The system behind the VRE answered something unusable; retry later and report it "
    "with the `request_id` if it persists.",
    503: "Retry after `Retry-After` seconds; `GET /readyz` shows which part is down.",
    504: "The system behind the VRE did not answer in time; retry later.",
    507: "Free space (delete files or rules) or ask for a larger quota; `extra` members give "
    "the numbers.",
}


class HeadDone(Exception):  # noqa: N818 - a signal, not an error
    """Raised into a streamed GET answered as HEAD once its headers are out: stop producing."""


class VreError(Exception):
    """Base of every error a VRE service raises on purpose."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    advice: ClassVar[str | None] = None
    """What a person can do about it (the problem type's page); default: by status."""

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
        """The problem type URI (stable; its page documents the class of error)."""
        return problem_type_uri(self.slug)


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


class MalformedBodyError(BadRequestError):
    """The request body is not valid JSON (or YAML): ``extra`` has ``line``, ``column`` and
    ``reason``."""

    slug = "malformed-body"
    title = "Malformed body"
    advice = (
        "Fix the syntax at the `line` and `column` given (the `reason` says what the parser "
        "expected) — e.g. a missing comma or quote, a trailing comma, a tab in YAML "
        "indentation — and send the body again."
    )


class UnsupportedMediaTypeError(VreError):
    """The body's media type is not one this operation reads; ``extra["accepted"]`` lists
    those it does."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


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


# Problem types recorded on background jobs (runs, imports, queries) rather than raised as a
# class: slug → (status, title, meaning, advice). Their pages are served like the classes'.
JOB_PROBLEM_TYPES: dict[str, tuple[int, str, str, str]] = {
    "run-failed": (
        422,
        "Run failed",
        "A step of the workflow run exited with an error (the run's `steps` say which).",
        "Read the step's logs (`GET /workflows/runs/{id}/logs`), fix the workflow or its "
        "inputs, and rerun it.",
    ),
    "interrupted": (
        503,
        "Interrupted",
        "The service stopped (a restart, a deployment) while this job was running; nothing "
        "of it was kept.",
        "Submit the job again.",
    ),
    "aborted": (
        409,
        "Aborted",
        "The job was cancelled before it completed; nothing was written.",
        "Submit it again if you still want its result.",
    ),
    "import-incomplete": (
        502,
        "Import incomplete",
        "Some files of the record could not be copied into the Data Lake (`detail` lists "
        "them); the others were.",
        "Retry the import; files already imported are not copied twice.",
    ),
}
