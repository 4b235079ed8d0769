"""Who may change what: registrants own their entries, curators may edit every entry."""

from __future__ import annotations

from collections.abc import Iterable

from vre_catalogue.errors import CuratorOnlyError, NotEditableError
from vre_catalogue.models import SoftwareRef
from vre_common.auth import Principal


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

    def require_edit(self, user: Principal, entry: SoftwareRef) -> None:
        """Raise NotEditableError unless ``user`` registered the entry or is a curator."""
        if user.key != entry.registrant_key and not self.is_curator(user):
            raise NotEditableError(
                f"the entry {entry.name!r} belongs to its registrant; only they and curators "
                "may change it"
            )
