"""Who may change what: registrants own their entries, curators may edit every personal entry,
and an entry owned by a Science Project is changed by whoever the project's roles allow.

Project entries are decided by the shared policy (:mod:`vre_common.policy`,
``catalogue.write``: maintainers and owners), asked of the gateway with the caller's token;
the registrant and curator rules do not apply to them.
"""

from __future__ import annotations

from collections.abc import Iterable

from vre_catalogue.errors import (
    CuratorOnlyError,
    EntryOwnerConflictError,
    NotEditableError,
    ProjectsUnavailableError,
)
from vre_catalogue.models import SoftwareRef
from vre_common.auth import Principal
from vre_common.policy import Action, ProjectNotFoundError, RequestPolicy


class AccessPolicy:
    """The catalogue's write rules (reads are public)."""

    def __init__(self, *, curator_groups: Iterable[str], admin_groups: Iterable[str]) -> None:
        self._curators = tuple(dict.fromkeys([*curator_groups, *admin_groups]))

    def is_curator(self, user: Principal) -> bool:
        """Curators and administrators (exact group membership)."""
        return any(user.in_group(group) for group in self._curators)

    def require_curator(self, user: Principal, action: str) -> None:
        """Raise CuratorOnlyError unless ``user`` is a curator."""
        if not self.is_curator(user):
            raise CuratorOnlyError(f"only curators may {action}")

    async def require_project_write(
        self, user: Principal, project: str, projects: RequestPolicy | None
    ) -> None:
        """``catalogue.write`` in ``project`` (404 if it is unknown or private to ``user``)."""
        if projects is None:
            raise ProjectsUnavailableError(
                "project-owned entries need the gateway: the catalogue has no project directory "
                "(set gateway_url, or mount it in the gateway)"
            )
        await projects.require(user, Action.CATALOGUE_WRITE, project=project)

    async def require_edit(
        self, user: Principal, entry: SoftwareRef, projects: RequestPolicy | None
    ) -> None:
        """Raise unless ``user`` may change ``entry``.

        A personal entry: its registrant or a curator (else NotEditableError). A project's
        entry: ``catalogue.write`` in the project (the entry is public, so a project the caller
        cannot see answers 403 here, not 404).
        """
        if entry.project is None:
            if user.key != entry.registrant_key and not self.is_curator(user):
                raise NotEditableError(
                    f"the entry {entry.name!r} belongs to its registrant; only they and curators "
                    "may change it"
                )
            return
        try:
            await self.require_project_write(user, entry.project, projects)
        except ProjectNotFoundError:
            raise NotEditableError(
                f"the entry {entry.name!r} belongs to the project {entry.project}; only its "
                "maintainers may change it"
            ) from None

    def require_same_owner(self, entry: SoftwareRef, project: str | None) -> None:
        """A new release names the entry's own project, or none (409 otherwise)."""
        if project is not None and project != entry.project:
            owner = f"the project {entry.project}" if entry.project else "its registrant"
            raise EntryOwnerConflictError(
                f"the entry {entry.name!r} exists and belongs to {owner}, not to {project}"
            )
