"""Errors of the workflows service (rendered as problem+json by vre_common).

- ``InvalidSpecificationError`` (422): the reana.yaml is invalid; ``errors`` lists every finding
  with its location.
- ``RunNotFoundError`` (404): no such run, or not the caller's.
- ``RunStateError`` (409): the run's state forbids the operation (cancel a finished run, …).
- ``ImageUnavailableError`` (422): a step's image is not available locally and host execution
  is not allowed; says which image and how to provide it.
- ``ReanaCredentialsMissingError`` (409): a REANA run without a registered REANA token.
- ``ReanaTokenRejectedError`` (403): REANA refused the registered token.
- ``ReanaQuotaExceededError`` (403): REANA's quota message, verbatim.
- ``ReanaRequestError`` (422/404/409): another REANA refusal, with REANA's message.
- ``BackendNotConfiguredError`` (422): the run names a backend this deployment does not offer.
- ``SlurmRequestError`` (422): Slurm refused a step's job (partition, time limit), its message.
- A Slurm controller that does not answer at submission is a 503 (``BackendUnavailableError``).
- ``ProjectsUnavailableError`` (503): a project run, but no gateway is configured to authorize it.
- Project runs also raise the shared policy's errors (``vre_common.policy``): 404 when the
  project is private to the caller, 403 when their role is too weak, 409 when it is archived.
"""

from __future__ import annotations

from vre_common.errors import (
    BackendUnavailableError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)


class InvalidSpecificationError(InvalidInputError):
    """The reana.yaml (or the run request around it) does not validate."""

    slug = "invalid-workflow-specification"
    title = "Invalid workflow specification"


class RunNotFoundError(NotFoundError):
    """No such run, or it belongs to someone else."""

    slug = "run-not-found"
    title = "Run not found"


class OutputNotFoundError(NotFoundError):
    """The run has no such output (or it is not available any more)."""

    slug = "output-not-found"
    title = "Output not found"


class RunStateError(ConflictError):
    """The run's state forbids this operation."""

    slug = "run-state"
    title = "Run state conflict"


class ImageUnavailableError(InvalidInputError):
    """A step's container image is not available locally and host execution is off."""

    slug = "image-unavailable"
    title = "Container image not available"


class LocalExecutionRefusedError(InvalidInputError):
    """The local executor cannot run this workflow here (engine, host execution off, …)."""

    slug = "local-execution-refused"
    title = "Cannot run locally"


class BackendNotConfiguredError(InvalidInputError):
    """The run asks for a backend this deployment does not offer."""

    slug = "backend-not-configured"
    title = "Backend not configured"


class SlurmRequestError(InvalidInputError):
    """Slurm refused the job (its message is the detail): unknown partition, bad time, …"""

    slug = "slurm-request-refused"
    title = "Slurm refused the job"


class ReanaCredentialsMissingError(ConflictError):
    """The caller has no REANA token registered for the chosen server."""

    slug = "reana-credentials-missing"
    title = "REANA credentials missing"


class ReanaTokenRejectedError(ForbiddenError):
    """REANA refused the caller's registered token."""

    slug = "reana-token-rejected"
    title = "REANA token rejected"


class ReanaQuotaExceededError(ForbiddenError):
    """REANA refused the operation because the user's quota is exceeded."""

    slug = "reana-quota-exceeded"
    title = "REANA quota exceeded"


class ReanaRequestError(InvalidInputError):
    """REANA refused the request (its message is the detail)."""

    slug = "reana-request-refused"
    title = "REANA refused the request"


class ReanaNotFoundError(NotFoundError):
    """REANA does not know the workflow, the user or the file."""

    slug = "reana-not-found"
    title = "Not found on REANA"


class ProjectsUnavailableError(BackendUnavailableError):
    """Runs of a project need the gateway's project directory, and none is configured."""

    slug = "projects-unavailable"
    title = "Projects unavailable"
