"""Errors of the datalake service; each is a :mod:`vre_common.errors` class (status, slug, title).

- ``DidNotFoundError``, ``ScopeNotFoundError``, ``RseNotFoundError``, ``RuleNotFoundError``,
  ``ReplicaNotFoundError`` (404);
- ``DidExistsError`` (409), ``ContentConflictError`` (409: same DID, other bytes),
  ``ScopeExistsError`` (409: a project scope that exists already);
- ``ScopeForbiddenError`` (403: another user's scope), ``ProvisionForbiddenError`` (403: only
  the gateway and administrators create project scopes); a project scope answers the shared
  policy's errors (``vre_common.policy``: 404 private/unknown, 403 role too weak, 409 archived);
- ``InvalidNameError`` (422, with the field), ``ChecksumMismatchError`` (422);
- ``RangeNotSatisfiableError`` (416); ``UploadAbortedError`` (400: the client went away);
- ``QuotaExceededError`` (507, with ``limit_bytes``/``used_bytes``/``requested_bytes``);
- ``RucioRefusedError`` (403: Rucio's own permission check said no);
- ``StorageError`` (502: a storage element failed while moving bytes).
"""

from __future__ import annotations

from typing import Any

from vre_common.errors import (
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    VreError,
)


class DidNotFoundError(NotFoundError):
    """The DID does not exist."""

    slug = "did-not-found"
    title = "DID not found"


class ScopeNotFoundError(NotFoundError):
    """The scope does not exist."""

    slug = "scope-not-found"
    title = "Scope not found"


class RseNotFoundError(NotFoundError):
    """The RSE does not exist."""

    slug = "rse-not-found"
    title = "RSE not found"


class RuleNotFoundError(NotFoundError):
    """The replication rule does not exist (or is not the caller's)."""

    slug = "rule-not-found"
    title = "Rule not found"


class ReplicaNotFoundError(NotFoundError):
    """No readable replica of the file exists."""

    slug = "replica-not-found"
    title = "No replica available"


class DidExistsError(ConflictError):
    """A DID of that name exists already."""

    slug = "did-exists"
    title = "DID exists"


class ContentConflictError(ConflictError):
    """The DID exists with other content (size or checksum differ)."""

    slug = "content-conflict"
    title = "Different content under this DID"


class RuleExistsError(ConflictError):
    """The account has this rule already (same DID, RSE expression and copies)."""

    slug = "rule-exists"
    title = "Rule exists"


class ScopeExistsError(ConflictError):
    """The scope exists already."""

    slug = "scope-exists"
    title = "Scope exists"


class ProvisionForbiddenError(ForbiddenError):
    """Only the gateway's service identity and administrators create project scopes."""

    slug = "scope-provision-forbidden"
    title = "Not allowed to create project scopes"


class ScopeForbiddenError(ForbiddenError):
    """The scope belongs to someone else."""

    slug = "scope-forbidden"
    title = "Not your scope"


class RucioRefusedError(ForbiddenError):
    """Rucio's permission check refused the operation."""

    slug = "rucio-access-denied"
    title = "Rucio refused the operation"


class InvalidNameError(InvalidInputError):
    """A scope, name, RSE or metadata key breaks the naming rules; ``errors`` names the field."""

    slug = "invalid-name"
    title = "Invalid name"

    def __init__(self, field: list[str | int] | str, message: str, **kwargs: Any) -> None:
        loc = [field] if isinstance(field, str) else list(field)
        super().__init__(
            f"{'.'.join(str(p) for p in loc)}: {message}",
            errors=[{"loc": loc, "msg": message, "type": "value_error.name"}],
            **kwargs,
        )


class ChecksumMismatchError(InvalidInputError):
    """The bytes received do not match the checksum the client announced."""

    slug = "checksum-mismatch"
    title = "Checksum mismatch"


class RangeNotSatisfiableError(VreError):
    """The requested byte range lies outside the file."""

    status = 416
    slug = "range-not-satisfiable"
    title = "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"the range is outside the file of {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )


class QuotaError(QuotaExceededError):
    """Not enough room in the account's limit on the RSE; ``extra`` has the numbers."""

    def __init__(
        self,
        rse: str,
        *,
        limit_bytes: int | None,
        used_bytes: int | None,
        requested_bytes: int | None,
        detail: str | None = None,
    ) -> None:
        numbers = {
            "rse": rse,
            "limit_bytes": limit_bytes,
            "used_bytes": used_bytes,
            "requested_bytes": requested_bytes,
            "remaining_bytes": (
                max(0, limit_bytes - used_bytes)
                if limit_bytes is not None and used_bytes is not None
                else None
            ),
        }
        if detail is None:
            detail = f"not enough quota on {rse}"
            if requested_bytes is not None:
                detail += f": {requested_bytes} bytes requested"
            if limit_bytes is not None:
                detail += f", {numbers['remaining_bytes']} of {limit_bytes} remaining"
        super().__init__(
            detail,
            extra=numbers,
        )


class UploadAbortedError(BadRequestError):
    """The client went away before the whole body arrived (nothing was kept)."""

    slug = "upload-aborted"
    title = "Upload aborted"


class StorageError(BadGatewayError):
    """A storage element failed while bytes were moved."""

    slug = "storage-error"
    title = "Storage error"
