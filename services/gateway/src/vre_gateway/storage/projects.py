"""Projects, memberships, group bindings, invitations and known users in SQL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.policy import Role, Visibility, strongest
from vre_gateway.storage.records import (
    GroupBindingRecord,
    InvitationRecord,
    MemberRecord,
    ProjectRecord,
)
from vre_gateway.storage.schema import (
    GroupBindingRow,
    InvitationRow,
    KnownUserRow,
    MemberRow,
    ProjectRow,
)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Words of a free-text query: whitespace, quotes and wildcards (every word is a substring
# already) separate them.
_QUERY_WORD = re.compile(r"[^\s\"'\u201c\u201d\u2018\u2019*?]+")


def _word_matches(word: str, *columns: Any) -> ColumnElement[bool]:
    """``word`` occurs in one of ``columns``, case-insensitively; SQLite's lower() folds ASCII
    only, so the word as written is tried too (an accented name found as it is spelled)."""
    lowered, exact = _like(word.lower()), _like(word)
    return or_(
        *(func.lower(c).like(lowered, escape="\\") for c in columns),
        *(c.like(exact, escape="\\") for c in columns),
    )


class ProjectStore:
    """Every query on projects and who is in them (one session, the request's)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ projects

    async def get(
        self, *, slug: str | None = None, scope: str | None = None
    ) -> ProjectRecord | None:
        """One project by slug or by scope."""
        column = ProjectRow.slug if slug is not None else ProjectRow.scope
        row = await self.session.scalar(select(ProjectRow).where(column == (slug or scope)))
        return ProjectRecord.model_validate(row) if row else None

    async def get_with_role(
        self, principal: Principal | None, *, slug: str | None = None, scope: str | None = None
    ) -> tuple[ProjectRecord, Role | None] | None:
        """One project by slug or by scope and the caller's role in it, in one query: the
        project joined to the caller's membership and to the bindings of the caller's groups
        (a row per binding); the role is the strongest of them. :meth:`get` + :meth:`roles`."""
        column = ProjectRow.slug if slug is not None else ProjectRow.scope
        query = select(ProjectRow).where(column == (slug or scope))
        if principal is not None:
            query = query.add_columns(MemberRow.role).outerjoin(
                MemberRow,
                (MemberRow.project_id == ProjectRow.id)
                & (MemberRow.principal_key == principal.key),
            )
            if principal.groups:
                query = query.add_columns(GroupBindingRow.role).outerjoin(
                    GroupBindingRow,
                    (GroupBindingRow.project_id == ProjectRow.id)
                    & GroupBindingRow.group.in_(principal.groups),
                )
        rows = (await self.session.execute(query)).all()
        if not rows:
            return None
        roles: set[Role] = set()
        for row in rows:
            roles.update(Role(str(value)) for value in tuple(row)[1:] if value is not None)
        return ProjectRecord.model_validate(rows[0][0]), strongest(*roles)

    async def get_many(self, ids: Sequence[str]) -> dict[str, ProjectRecord]:
        """Projects by id."""
        if not ids:
            return {}
        rows = await self.session.scalars(select(ProjectRow).where(ProjectRow.id.in_(set(ids))))
        return {r.id: ProjectRecord.model_validate(r) for r in rows}

    async def ids_by_scope(self, scopes: Sequence[str]) -> dict[str, str]:
        """scope → project id, for the scopes that belong to a project."""
        if not scopes:
            return {}
        rows = await self.session.execute(
            select(ProjectRow.scope, ProjectRow.id).where(ProjectRow.scope.in_(set(scopes)))
        )
        return dict(rows.all())

    async def ids_by_slug(self, slugs: Sequence[str]) -> dict[str, str]:
        """slug → project id."""
        if not slugs:
            return {}
        rows = await self.session.execute(
            select(ProjectRow.slug, ProjectRow.id).where(ProjectRow.slug.in_(set(slugs)))
        )
        return dict(rows.all())

    async def slug_taken(self, slug: str, scope: str) -> bool:
        """True if a project has this slug or this scope."""
        found = await self.session.scalar(
            select(ProjectRow.id).where(or_(ProjectRow.slug == slug, ProjectRow.scope == scope))
        )
        return found is not None

    async def add(self, record: ProjectRecord) -> None:
        """Insert a project (flushed: a duplicate slug fails here, not at commit)."""
        self.session.add(ProjectRow(**record.model_dump()))
        await self.session.flush()

    async def update(self, project_id: str, **values: Any) -> None:
        """Change columns of a project."""
        await self.session.execute(
            update(ProjectRow).where(ProjectRow.id == project_id).values(**values)
        )

    async def delete(self, project_id: str) -> None:
        """Delete a project with its memberships, bindings and invitations."""
        for table in (MemberRow, GroupBindingRow, InvitationRow):
            await self.session.execute(delete(table).where(table.project_id == project_id))
        await self.session.execute(delete(ProjectRow).where(ProjectRow.id == project_id))

    async def count_owned(self, key: str) -> int:
        """Projects where ``key`` is a direct owner."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(MemberRow)
            .where(MemberRow.principal_key == key, MemberRow.role == Role.OWNER.value)
        )
        return int(count or 0)

    def _member_of(self, principal: Principal) -> ColumnElement[bool]:
        direct = ProjectRow.id.in_(
            select(MemberRow.project_id).where(MemberRow.principal_key == principal.key)
        )
        if not principal.groups:
            return direct
        bound = ProjectRow.id.in_(
            select(GroupBindingRow.project_id).where(GroupBindingRow.group.in_(principal.groups))
        )
        return or_(direct, bound)

    def _visible(
        self, principal: Principal | None, *, mine: bool, public: bool
    ) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = []
        if public:
            conditions.append(ProjectRow.visibility == Visibility.PUBLIC.value)
        if mine and principal is not None:
            conditions.append(self._member_of(principal))
        return or_(*conditions) if conditions else false()

    async def list_visible(
        self,
        principal: Principal | None,
        *,
        mine: bool,
        public: bool,
        limit: int,
        offset: int,
        query: str | None = None,
    ) -> list[ProjectRecord]:
        """Projects the caller is in (``mine``) and/or public ones; ``query``: every word of it
        occurs in the name, slug or description."""
        stmt = select(ProjectRow).where(self._visible(principal, mine=mine, public=public))
        for word in _QUERY_WORD.findall(query or ""):  # every word, in any order
            stmt = stmt.where(
                _word_matches(word, ProjectRow.name, ProjectRow.slug, ProjectRow.description)
            )
        stmt = stmt.order_by(ProjectRow.name, ProjectRow.slug).limit(limit).offset(offset)
        return [ProjectRecord.model_validate(r) for r in await self.session.scalars(stmt)]

    async def roles(self, principal: Principal, project_ids: Sequence[str]) -> dict[str, Role]:
        """The caller's role per project: the highest of direct membership and bound groups."""
        if not project_ids:
            return {}
        ids = set(project_ids)
        out: dict[str, Role] = {}
        direct = await self.session.execute(
            select(MemberRow.project_id, MemberRow.role).where(
                MemberRow.project_id.in_(ids), MemberRow.principal_key == principal.key
            )
        )
        for pid, role in direct.all():
            out[pid] = Role(role)
        if principal.groups:
            bound = await self.session.execute(
                select(GroupBindingRow.project_id, GroupBindingRow.role).where(
                    GroupBindingRow.project_id.in_(ids),
                    GroupBindingRow.group.in_(principal.groups),
                )
            )
            for pid, role in bound.all():
                best = strongest(out.get(pid), Role(role))
                assert best is not None
                out[pid] = best
        return out

    # ------------------------------------------------------------------ members

    async def members(self, project_id: str) -> list[MemberRecord]:
        """Direct members, strongest role first."""
        rows = await self.session.scalars(
            select(MemberRow).where(MemberRow.project_id == project_id).order_by(MemberRow.added_at)
        )
        members = [MemberRecord.model_validate(r) for r in rows]
        return sorted(members, key=lambda m: -m.role.rank)

    async def member(
        self, project_id: str, *, member_id: str | None = None, key: str | None = None
    ) -> MemberRecord | None:
        """One membership by its id or by the member's key."""
        stmt = select(MemberRow).where(MemberRow.project_id == project_id)
        if member_id is not None:
            stmt = stmt.where(MemberRow.id == member_id)
        else:
            stmt = stmt.where(MemberRow.principal_key == key)
        row = await self.session.scalar(stmt)
        return MemberRecord.model_validate(row) if row else None

    async def add_member(self, record: MemberRecord) -> None:
        """Insert a membership."""
        self.session.add(MemberRow(**record.model_dump()))
        await self.session.flush()

    async def set_role(self, member_id: str, role: Role) -> None:
        """Change a member's role."""
        await self.session.execute(
            update(MemberRow).where(MemberRow.id == member_id).values(role=role.value)
        )

    async def remove_member(self, member_id: str) -> None:
        """Delete a membership."""
        await self.session.execute(delete(MemberRow).where(MemberRow.id == member_id))

    async def count_owners(self, project_id: str) -> int:
        """Direct owners of a project."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(MemberRow)
            .where(MemberRow.project_id == project_id, MemberRow.role == Role.OWNER.value)
        )
        return int(count or 0)

    # ------------------------------------------------------------------ group bindings

    async def bindings(self, project_id: str) -> list[GroupBindingRecord]:
        """The project's group bindings, by group."""
        rows = await self.session.scalars(
            select(GroupBindingRow)
            .where(GroupBindingRow.project_id == project_id)
            .order_by(GroupBindingRow.group)
        )
        return [GroupBindingRecord.model_validate(r) for r in rows]

    async def binding(self, project_id: str, group: str) -> GroupBindingRecord | None:
        """One binding."""
        row = await self.session.get(GroupBindingRow, (project_id, group))
        return GroupBindingRecord.model_validate(row) if row else None

    async def put_binding(self, record: GroupBindingRecord) -> None:
        """Create or change a binding."""
        row = await self.session.get(GroupBindingRow, (record.project_id, record.group))
        if row is None:
            self.session.add(GroupBindingRow(**record.model_dump()))
        else:
            row.role = record.role.value
        await self.session.flush()

    async def delete_binding(self, project_id: str, group: str) -> None:
        """Remove a binding."""
        await self.session.execute(
            delete(GroupBindingRow).where(
                GroupBindingRow.project_id == project_id, GroupBindingRow.group == group
            )
        )

    # ------------------------------------------------------------------ invitations

    async def add_invitation(self, record: InvitationRecord) -> None:
        """Insert an invitation."""
        self.session.add(InvitationRow(**record.model_dump()))
        await self.session.flush()

    async def invitation(self, invitation_id: str) -> InvitationRecord | None:
        """One invitation."""
        row = await self.session.get(InvitationRow, invitation_id)
        return InvitationRecord.model_validate(row) if row else None

    async def invitations(self, project_id: str) -> list[InvitationRecord]:
        """A project's invitations, newest first."""
        rows = await self.session.scalars(
            select(InvitationRow)
            .where(InvitationRow.project_id == project_id)
            .order_by(InvitationRow.created_at.desc())
        )
        return [InvitationRecord.model_validate(r) for r in rows]

    async def invitations_for(self, principal: Principal) -> list[InvitationRecord]:
        """Pending invitations addressed to the caller (by subject or by user name)."""
        rows = await self.session.scalars(
            select(InvitationRow)
            .where(
                InvitationRow.state == "pending",
                InvitationRow.issuer == principal.issuer,
                or_(
                    InvitationRow.subject == principal.subject,
                    InvitationRow.username == principal.username,
                ),
            )
            .order_by(InvitationRow.created_at.desc())
        )
        return [InvitationRecord.model_validate(r) for r in rows]

    async def set_invitation_state(
        self, invitation_id: str, state: str, decided_at: datetime
    ) -> None:
        """Accept, decline or revoke."""
        await self.session.execute(
            update(InvitationRow)
            .where(InvitationRow.id == invitation_id)
            .values(state=state, decided_at=decided_at)
        )

    # ------------------------------------------------------------------ known users

    async def remember(self, principal: Principal, now: datetime) -> None:
        """Record (or refresh) an identity so it can be added by user name."""
        row = await self.session.get(KnownUserRow, principal.key)
        if row is None:
            self.session.add(
                KnownUserRow(
                    key=principal.key,
                    issuer=principal.issuer,
                    subject=principal.subject,
                    username=principal.username,
                    last_seen=now,
                )
            )
        else:
            row.username = principal.username
            row.last_seen = now
        await self.session.flush()

    async def known_username(self, key: str) -> str | None:
        """The user name last seen for an identity key."""
        row = await self.session.get(KnownUserRow, key)
        return row.username if row else None

    async def find_subject(self, issuer: str, username: str) -> tuple[str, str] | None:
        """(subject, username) of the identity last seen with this user name."""
        row = await self.session.scalar(
            select(KnownUserRow)
            .where(KnownUserRow.issuer == issuer, KnownUserRow.username == username)
            .order_by(KnownUserRow.last_seen.desc())
            .limit(1)
        )
        return (row.subject, row.username) if row else None
