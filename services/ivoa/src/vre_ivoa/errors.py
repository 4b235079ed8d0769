"""The ivoa service's errors: specialisations of the VRE hierarchy in :mod:`vre_common.errors`.

- ``UnknownServiceError`` (404): no VO service of that name is configured.
- ``QueryNotFoundError`` (404): no query job with this id belongs to the caller.
- ``QueryRejectedError`` (422): the VO service refused the query (an ADQL syntax error, an
  unknown column, a bad parameter); ``detail`` carries the service's own message (DaCHS says
  where: line and column) and ``errors`` points at the request field.
- ``ResultTooLargeError`` (422): the result document exceeds ``limits.max_result_bytes``.
- ``QueryStateError`` (409): the job's phase does not allow the action (cancel a finished one).
- ``VoServiceError`` (502): the service answered something that is not a valid answer
  (not a VOTable, no results table, an HTTP 5xx).
- ``VoServiceUnavailableError`` (503): the service cannot be reached.
- ``VoServiceTimeoutError`` (504): the service did not answer, or the query did not finish,
  in the time allowed.
- ``RegistryNotConfiguredError`` (503): discovery asked for and no RegTAP URL is set.
- Shared: ``vre_common.errors.ServiceNotConfiguredError`` (503) when the datalake service's
  URL is not set; ``vre_common.policy.ProjectsUnavailableError`` (503) when a project scope
  is involved and no gateway is set.
"""

from __future__ import annotations

from vre_common.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)


class UnknownServiceError(NotFoundError):
    """No VO service of this name is configured."""

    slug = "unknown-vo-service"
    title = "Unknown VO service"


class QueryNotFoundError(NotFoundError):
    """No query job with this id belongs to the caller."""

    slug = "query-not-found"
    title = "Query not found"


class QueryRejectedError(InvalidInputError):
    """The VO service refused the query; ``detail`` has its message."""

    slug = "query-rejected"
    title = "Query rejected by the VO service"


class ResultTooLargeError(InvalidInputError):
    """The result is larger than this deployment reads."""

    slug = "result-too-large"
    title = "Result too large"


class QueryStateError(ConflictError):
    """The job's phase does not allow the action."""

    slug = "query-state"
    title = "Query state conflict"


class VoServiceError(BadGatewayError):
    """The VO service answered, but not with a valid answer."""

    slug = "vo-service-error"
    title = "VO service error"


class VoServiceUnavailableError(BackendUnavailableError):
    """The VO service cannot be reached."""

    slug = "vo-service-unavailable"
    title = "VO service unavailable"


class VoServiceTimeoutError(BackendTimeoutError):
    """The VO service (or the query) took longer than allowed."""

    slug = "vo-service-timeout"
    title = "VO service timeout"


class RegistryNotConfiguredError(NotFoundError):
    """Registry discovery needs a RegTAP URL; this deployment has none (404, not an outage)."""

    slug = "registry-not-configured"
    title = "No registry configured"
