"""The zenodo service's errors: specialisations of the VRE hierarchy in :mod:`vre_common.errors`.

- ``ZenodoValidationError`` (422): Zenodo refused the metadata or the request; ``errors``
  lists each field as ``{"loc": ["metadata", "title"], "msg": …, "type": "zenodo"}``.
- ``TooManyFilesError`` (422): more files than a deposition may hold (100 on Zenodo).
- ``ZenodoTokenMissingError`` (403): the caller has no Zenodo token registered.
- ``ZenodoTokenRejectedError`` (403): Zenodo answered 401 to the caller's token — it is
  wrong, expired or revoked; register a new one. Not a 401: the VRE token is fine, and a
  client that refreshes its IAM token on a 401 would loop.
- ``ZenodoForbiddenError`` (403): Zenodo answered 403 (missing token scope, not the owner,
  a published deposition's files are locked).
- ``RecordNotFoundError``, ``DepositionNotFoundError``, ``ImportNotFoundError``,
  ``RunNotFoundError``, ``SoftwareNotFoundError`` (404).
- ``DepositionStateError`` (409): the deposition's state forbids the action (publishing an
  incomplete upload, discarding a published record …).
- ``ChecksumMismatchError`` (502): bytes did not match their recorded md5.
- Shared: ``vre_common.errors.ServiceNotConfiguredError`` (503) when a VRE service this
  operation needs has no URL set; ``vre_common.policy.ProjectsUnavailableError`` (503) when
  a project scope is involved and no gateway is set.
- Project scopes also raise the shared policy's errors (``vre_common.policy``): 404 when the
  project is private to the caller, 403 when their role is too weak, 409 when it is archived.
"""

from __future__ import annotations

from vre_common.errors import (
    BadGatewayError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)

TOKEN_HINT = "register a new personal token with PUT /zenodo/credentials"  # noqa: S105 - a hint


class ZenodoValidationError(InvalidInputError):
    """Zenodo refused the request's content; ``errors`` lists every field it named."""

    slug = "zenodo-validation"
    title = "Zenodo validation error"


class TooManyFilesError(InvalidInputError):
    """More files than one deposition may hold."""

    slug = "too-many-files"
    title = "Too many files"


class ZenodoTokenMissingError(ForbiddenError):
    """The operation needs the caller's Zenodo token and none is registered."""

    slug = "zenodo-token-missing"
    title = "No Zenodo token registered"


class ZenodoTokenRejectedError(ForbiddenError):
    """Zenodo answered 401 to the caller's token."""

    slug = "zenodo-token-rejected"
    title = "Zenodo token rejected"


class ZenodoForbiddenError(ForbiddenError):
    """Zenodo answered 403: the token lacks a scope or the object is not the caller's."""

    slug = "zenodo-forbidden"
    title = "Zenodo refused the operation"


class RecordNotFoundError(NotFoundError):
    """Zenodo has no (visible) record with this id or DOI."""

    slug = "record-not-found"
    title = "Record not found"


class DepositionNotFoundError(NotFoundError):
    """No deposition with this id belongs to the caller."""

    slug = "deposition-not-found"
    title = "Deposition not found"


class ImportNotFoundError(NotFoundError):
    """No import job with this id belongs to the caller."""

    slug = "import-not-found"
    title = "Import not found"


class RunNotFoundError(NotFoundError):
    """The workflows service knows no such run (for the caller)."""

    slug = "run-not-found"
    title = "Run not found"


class ReproductionNotFoundError(NotFoundError):
    """The caller has no such reproduction."""

    slug = "reproduction-not-found"
    title = "Reproduction not found"


class RunRecordMissingError(InvalidInputError):
    """The record carries no (readable) run record: nothing says how to re-run it."""

    slug = "run-record-missing"
    title = "No run record"


class SoftwareNotFoundError(NotFoundError):
    """The catalogue knows no such software entry."""

    slug = "software-not-found"
    title = "Software not found"


class DepositionStateError(ConflictError):
    """The deposition's state does not allow this action."""

    slug = "deposition-state"
    title = "Deposition state conflict"


class ChecksumMismatchError(BadGatewayError):
    """Bytes received did not match the md5 their source recorded."""

    slug = "checksum-mismatch"
    title = "Checksum mismatch"
