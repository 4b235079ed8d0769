"""Errors of the gateway's own resources (each renders as a problem+json)."""

from __future__ import annotations

from vre_common.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError


class ProjectExistsError(ConflictError):
    """The slug (or its scope) is taken."""

    slug = "project-exists"
    title = "Project exists"


class ProjectLimitError(ForbiddenError):
    """The caller may not create (more) projects."""

    slug = "project-limit"
    title = "Project limit reached"


class ProjectHasDataError(ConflictError):
    """The project's scope holds data: archive it instead of deleting it."""

    slug = "project-has-data"
    title = "Project has data"


class LastOwnerError(ConflictError):
    """A project always keeps at least one owner."""

    slug = "last-owner"
    title = "Last owner"


class MemberExistsError(ConflictError):
    """The identity is already a direct member."""

    slug = "member-exists"
    title = "Already a member"


class MemberNotFoundError(NotFoundError):
    """No such membership, group binding or known user."""

    slug = "member-not-found"
    title = "Member not found"


class InvitationNotFoundError(NotFoundError):
    """No such invitation for the caller."""

    slug = "invitation-not-found"
    title = "Invitation not found"


class InvitationStateError(ConflictError):
    """The invitation was already decided, or it expired."""

    slug = "invitation-state"
    title = "Invitation not pending"


class InvalidSlugError(InvalidInputError):
    """The slug cannot name a project (too long for a scope, or none could be derived)."""

    slug = "invalid-slug"
    title = "Invalid project slug"


class ProvenanceNotFoundError(NotFoundError):
    """No such entity in the graph, or it belongs to a project the caller may not read."""

    slug = "provenance-not-found"
    title = "Unknown provenance entity"


class IngestForbiddenError(ForbiddenError):
    """Only the VRE's services may post provenance events."""

    slug = "ingest-forbidden"
    title = "Not a provenance writer"
