"""The client's exceptions: one hierarchy, rooted at :class:`VreError`.

::

    VreError
    ├── ConfigError            no usable URL or config file
    ├── NoTokenError           token discovery found nothing
    ├── ChecksumMismatchError  bytes sent or received differ from what the VRE recorded
    ├── RunFailedError         a workflow run ended failed or cancelled (with the log tail)
    ├── WaitTimeoutError       wait() gave up
    ├── TransportError         the VRE could not be reached (connection, timeout)
    └── ApiError               the VRE answered with an RFC 9457 problem
        ├── BadRequestError        400
        ├── UnauthorizedError      401
        ├── ForbiddenError         403
        ├── NotFoundError          404
        ├── ConflictError          409
        ├── UnprocessableError     422 (``errors`` lists every field problem)
        ├── RateLimitedError       429
        └── ServerError            5xx (a backend outage is 502/503/504)

Every :class:`ApiError` carries the problem: ``status``, ``title``, ``detail``, ``type``,
``request_id`` (quote it when asking for help) and the whole document as ``problem``.
"""

from __future__ import annotations

from typing import Any


class VreError(Exception):
    """Base of every error the client raises."""


class ConfigError(VreError):
    """The VRE URL or the config file is unusable."""


class NoTokenError(VreError):
    """No bearer token was found (``BEARER_TOKEN``, ``BEARER_TOKEN_FILE``, ``bt_u$UID``)."""


class ChecksumMismatchError(VreError):
    """The bytes transferred do not match the checksums the VRE recorded."""


class WaitTimeoutError(VreError):
    """Waiting for a run, deposition or import took longer than the timeout."""


class TransportError(VreError):
    """The VRE could not be reached (connection refused, timeout, broken connection)."""


class RunFailedError(VreError):
    """A workflow run ended ``failed`` or ``cancelled``.

    ``run`` is the run's last state; ``log_tail`` the end of the failing step's log.
    """

    def __init__(self, message: str, *, run: dict[str, Any], log_tail: str = "") -> None:
        super().__init__(message + (f"\n--- log tail ---\n{log_tail}" if log_tail else ""))
        self.run = run
        self.log_tail = log_tail


class ApiError(VreError):
    """The VRE answered with an error: the RFC 9457 problem document it sent."""

    def __init__(self, problem: dict[str, Any], *, status: int) -> None:
        self.problem = problem
        self.status = int(problem.get("status") or status)
        self.title = str(problem.get("title") or "")
        self.detail = problem.get("detail")
        self.type = str(problem.get("type") or "about:blank")
        self.request_id = problem.get("request_id")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        text = f"{self.status} {self.title}".strip()
        if self.detail:
            text += f": {self.detail}"
        if self.request_id:
            text += f" (request {self.request_id})"
        super().__init__(text)


class BadRequestError(ApiError):
    """400: the request is malformed."""


class UnauthorizedError(ApiError):
    """401: no token, or the token is invalid or expired."""


class ForbiddenError(ApiError):
    """403: the token is valid but not allowed to do this."""


class NotFoundError(ApiError):
    """404: no such thing, or not visible to you."""


class ConflictError(ApiError):
    """409: the thing exists already or is in the wrong state."""


class UnprocessableError(ApiError):
    """422: the input is invalid; ``errors`` says what and where."""


class RateLimitedError(ApiError):
    """429: too many requests; retry later."""


class ServerError(ApiError):
    """5xx: the VRE or one of its backends failed (502/503/504: a backend outage)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitedError,
}


def error_for(status: int, problem: dict[str, Any]) -> ApiError:
    """The :class:`ApiError` subclass for ``status``, built from ``problem``."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(problem, status=status)
