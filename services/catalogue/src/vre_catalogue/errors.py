"""The catalogue's errors: specialisations of the VRE hierarchy in :mod:`vre_common.errors`.

- ``InvalidCodemetaError`` (422): a codemeta.json with problems; ``errors`` lists every one
  by field, ``warnings`` (an extension member) the recommended keys that are missing.
- ``SoftwareNotFoundError``, ``VersionNotFoundError``, ``EnvironmentNotFoundError``,
  ``HarvestJobNotFoundError`` (404).
- ``VersionExistsError``, ``EnvironmentExistsError``, ``NameTakenError``,
  ``HarvestRunningError``, ``EntryOwnerConflictError`` (409).
- ``NotEditableError`` (403): the entry belongs to someone else; ``CuratorOnlyError`` (403).
- ``ProjectsUnavailableError`` (503): a project entry, and no gateway to ask about projects.
- Project entries also answer the shared policy's errors (:mod:`vre_common.policy`).
"""

from __future__ import annotations

from vre_common.errors import (
    BackendUnavailableError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)


class InvalidCodemetaError(InvalidInputError):
    """The codemeta.json document has problems; every one is listed in ``errors``."""

    slug = "invalid-codemeta"
    title = "Invalid codemeta.json"
    advice = (
        "Each entry of `errors` says where (`pointer`, a JSON pointer into the document), what "
        "is wrong (`msg`) and what to write instead (`fix`): apply them all and send the "
        "document again. `warnings` list what the OSSR only recommends; they do not block. "
        "docs/validation-corpus.md compares these rules with the OSSR's own validator."
    )


class SoftwareNotFoundError(NotFoundError):
    """No catalogue entry has this id."""

    slug = "software-not-found"
    title = "Software not found"


class VersionNotFoundError(NotFoundError):
    """The entry has no release with this version."""

    slug = "version-not-found"
    title = "Version not found"


class EnvironmentNotFoundError(NotFoundError):
    """The entry has no environment with this id."""

    slug = "environment-not-found"
    title = "Environment not found"


class HarvestJobNotFoundError(NotFoundError):
    """No harvest job has this id."""

    slug = "harvest-not-found"
    title = "Harvest job not found"


class VersionExistsError(ConflictError):
    """The entry already has a release with this version."""

    slug = "version-exists"
    title = "Version exists"


class EnvironmentExistsError(ConflictError):
    """The release has this environment already."""

    slug = "environment-exists"
    title = "Environment exists"


class NameTakenError(ConflictError):
    """Another entry already has this name."""

    slug = "name-taken"
    title = "Name taken"


class HarvestRunningError(ConflictError):
    """A harvest of this community is already queued or running."""

    slug = "harvest-running"
    title = "Harvest already running"


class NotEditableError(ForbiddenError):
    """The entry belongs to another registrant and the caller is no curator."""

    slug = "not-editable"
    title = "Not editable"


class CuratorOnlyError(ForbiddenError):
    """Only curators and administrators may do this."""

    slug = "curators-only"
    title = "Curators only"


class EntryOwnerConflictError(ConflictError):
    """The entry exists and belongs to someone else than the project named."""

    slug = "entry-owner-conflict"
    title = "Entry belongs to another owner"


class ProjectsUnavailableError(BackendUnavailableError):
    """The catalogue cannot ask the gateway about projects (none configured)."""

    slug = "projects-unavailable"
    title = "Projects unavailable"
