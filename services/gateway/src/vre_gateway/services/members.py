"""Members, group bindings, invitations, leaving and ownership transfer.

Rules beyond the permission table:

- only an owner may grant, change or revoke the owner role (``ownership.transfer``);
- a group binding gives at most ``maintainer`` (owners are people, not groups);
- a project always keeps at least one direct owner (409 otherwise);
- an invitation is accepted only by the identity it names (by subject, or by user name at
  that issuer), before it expires.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from vre_common.auth import Principal
from vre_common.errors import InvalidInputError
from vre_common.policy import (
    Action,
    ProjectAccess,
    ProjectArchivedError,
    Role,
    authorize,
    strongest,
)
from vre_gateway.config import ProjectSettings
from vre_gateway.errors import (
    InvitationNotFoundError,
    InvitationStateError,
    LastOwnerError,
    MemberExistsError,
    MemberNotFoundError,
)
from vre_gateway.models.projects import (
    GroupBinding,
    GroupBindingCreate,
    GroupBindingList,
    Identity,
    Invitation,
    InvitationCreate,
    InvitationList,
    InvitationState,
    Member,
    MemberAdd,
    MemberList,
    OwnershipTransfer,
)
from vre_gateway.services.access import AccessService
from vre_gateway.services.audit import Auditor
from vre_gateway.storage.projects import ProjectStore
from vre_gateway.storage.records import (
    GroupBindingRecord,
    InvitationRecord,
    MemberRecord,
    ProjectRecord,
)


def _member(record: MemberRecord) -> Member:
    return Member.model_validate(record.model_dump())


def _invitation(
    record: InvitationRecord,
    project: ProjectRecord,
    now: datetime,
    invitee_known: bool | None = None,
) -> Invitation:
    state = InvitationState(record.state)
    if state is InvitationState.PENDING and record.expires_at <= now:
        state = InvitationState.EXPIRED
    return Invitation(
        id=record.id,
        project=project.slug,
        project_name=project.name,
        role=record.role,
        issuer=record.issuer,
        subject=record.subject,
        username=record.username,
        state=state,
        message=record.message,
        invited_by=record.created_by_name,
        invitee_known=invitee_known,
        created_at=record.created_at,
        expires_at=record.expires_at,
    )


class MembershipService:
    """Who is in a project, and how they get in and out."""

    def __init__(
        self,
        *,
        store: ProjectStore,
        access: AccessService,
        auditor: Auditor,
        settings: ProjectSettings,
    ) -> None:
        self.store = store
        self.access = access
        self.auditor = auditor
        self.settings = settings

    async def _manage(
        self, principal: Principal, slug: str, *roles: Role | None
    ) -> tuple[ProjectRecord, ProjectAccess]:
        """members.manage, plus ownership.transfer when an owner role is involved."""
        record, access = await self.access.require(principal, slug, Action.MEMBERS_MANAGE)
        if Role.OWNER in roles:
            authorize(access, principal, Action.OWNERSHIP_TRANSFER, target=slug)
        return record, access

    async def _last_owner_guard(self, project: ProjectRecord, member: MemberRecord) -> None:
        if member.role is Role.OWNER and await self.store.count_owners(project.id) <= 1:
            raise LastOwnerError(
                f"{member.username or member.subject} is the last owner of {project.slug}: "
                "transfer ownership first"
            )

    async def _resolve(
        self, principal: Principal, identity: Identity
    ) -> tuple[str, str, str | None]:
        issuer = identity.issuer or principal.issuer
        if identity.subject is not None:
            known = await self.store.known_username(f"{issuer}|{identity.subject}")
            return issuer, identity.subject, known
        assert identity.username is not None
        found = await self.store.find_subject(issuer, identity.username)
        if found is None:
            raise MemberNotFoundError(
                f"no user {identity.username!r} of {issuer} has used the VRE yet: add them by "
                "subject, or invite them by user name"
            )
        return issuer, found[0], found[1]

    # ------------------------------------------------------------------ members

    async def members(self, principal: Principal, slug: str) -> MemberList:
        """Direct members."""
        record, _ = await self.access.require(principal, slug, Action.MEMBERS_READ)
        return MemberList(items=[_member(m) for m in await self.store.members(record.id)])

    async def add(self, principal: Principal, slug: str, body: MemberAdd) -> Member:
        """Add an identity directly."""
        project, _ = await self._manage(principal, slug, body.role)
        issuer, subject, username = await self._resolve(principal, body)
        key = f"{issuer}|{subject}"
        if await self.store.member(project.id, key=key) is not None:
            raise MemberExistsError(f"{username or subject} is already a member of {slug}")
        member = MemberRecord(
            id=str(uuid.uuid4()),
            project_id=project.id,
            principal_key=key,
            issuer=issuer,
            subject=subject,
            username=username,
            role=body.role,
            added_by=principal.key,
            added_at=datetime.now(UTC),
        )
        await self.store.add_member(member)
        await self.auditor.record(
            principal,
            "member.add",
            project=project,
            target=key,
            detail={"role": body.role.value, "username": username},
        )
        return _member(member)

    async def _get_member(self, project: ProjectRecord, member_id: str) -> MemberRecord:
        member = await self.store.member(project.id, member_id=member_id)
        if member is None:
            raise MemberNotFoundError(f"no member {member_id} in {project.slug}")
        return member

    async def change_role(
        self, principal: Principal, slug: str, member_id: str, role: Role
    ) -> Member:
        """Change a direct member's role."""
        project, _ = await self.access.require(principal, slug, Action.MEMBERS_MANAGE)
        member = await self._get_member(project, member_id)
        await self._manage(principal, slug, role, member.role)
        if member.role is Role.OWNER and role is not Role.OWNER:
            await self._last_owner_guard(project, member)
        await self.store.set_role(member.id, role)
        await self.auditor.record(
            principal,
            "member.role",
            project=project,
            target=member.principal_key,
            detail={"from": member.role.value, "to": role.value},
        )
        return _member(member.model_copy(update={"role": role}))

    async def remove(self, principal: Principal, slug: str, member_id: str) -> None:
        """Remove a direct member (an owner only by an owner; never the last one)."""
        project, _ = await self.access.require(principal, slug, Action.MEMBERS_MANAGE)
        member = await self._get_member(project, member_id)
        await self._manage(principal, slug, member.role)
        await self._last_owner_guard(project, member)
        await self.store.remove_member(member.id)
        await self.auditor.record(
            principal, "member.remove", project=project, target=member.principal_key
        )

    async def leave(self, principal: Principal, slug: str) -> None:
        """The caller leaves (their direct membership; group roles stay with the group)."""
        project, _ = await self.access.require(principal, slug, Action.PROJECT_READ)
        member = await self.store.member(project.id, key=principal.key)
        if member is None:
            raise MemberNotFoundError(
                f"you are not a direct member of {slug} (a group binding may give you a role)"
            )
        await self._last_owner_guard(project, member)
        await self.store.remove_member(member.id)
        await self.auditor.record(principal, "member.leave", project=project, target=principal.key)

    async def transfer(self, principal: Principal, slug: str, body: OwnershipTransfer) -> Member:
        """Make another member owner; the caller keeps ``keep_role``."""
        project, _ = await self.access.require(principal, slug, Action.OWNERSHIP_TRANSFER)
        target = await self._get_member(project, body.member_id)
        me = await self.store.member(project.id, key=principal.key)
        await self.store.set_role(target.id, Role.OWNER)
        if me is not None and me.id != target.id and me.role is Role.OWNER:
            await self.store.set_role(me.id, body.keep_role)
        await self.auditor.record(
            principal,
            "ownership.transfer",
            project=project,
            target=target.principal_key,
            detail={"keep_role": body.keep_role.value},
        )
        return _member(target.model_copy(update={"role": Role.OWNER}))

    # ------------------------------------------------------------------ group bindings

    async def groups(self, principal: Principal, slug: str) -> GroupBindingList:
        """The project's group bindings."""
        record, _ = await self.access.require(principal, slug, Action.MEMBERS_READ)
        bindings = await self.store.bindings(record.id)
        return GroupBindingList(
            items=[GroupBinding(group=b.group, role=b.role, added_at=b.added_at) for b in bindings]
        )

    async def bind(self, principal: Principal, slug: str, body: GroupBindingCreate) -> GroupBinding:
        """Give every member of an IAM group a role (created or changed)."""
        if body.role is Role.OWNER:
            raise InvalidInputError(
                "a group cannot own a project: bind it as maintainer at most",
                errors=[{"loc": ["body", "role"], "msg": "owner is not allowed for groups"}],
            )
        project, _ = await self._manage(principal, slug)
        now = datetime.now(UTC)
        await self.store.put_binding(
            GroupBindingRecord(
                project_id=project.id,
                group=body.group,
                role=body.role,
                added_by=principal.key,
                added_at=now,
            )
        )
        await self.auditor.record(
            principal, "group.bind", project=project, target=body.group, detail={"role": body.role}
        )
        return GroupBinding(group=body.group, role=body.role, added_at=now)

    async def unbind(self, principal: Principal, slug: str, group: str) -> None:
        """Remove a group binding."""
        project, _ = await self._manage(principal, slug)
        if await self.store.binding(project.id, group) is None:
            raise MemberNotFoundError(f"the group {group} is not bound to {slug}")
        await self.store.delete_binding(project.id, group)
        await self.auditor.record(principal, "group.unbind", project=project, target=group)

    # ------------------------------------------------------------------ invitations

    async def invite(self, principal: Principal, slug: str, body: InvitationCreate) -> Invitation:
        """Invite an identity; nothing changes until they accept."""
        project, _ = await self._manage(principal, slug, body.role)
        issuer = body.issuer or principal.issuer
        if body.subject is not None:
            existing = await self.store.member(project.id, key=f"{issuer}|{body.subject}")
            if existing is not None:
                raise MemberExistsError(f"{body.subject} is already a member of {slug}")
        now = datetime.now(UTC)
        record = InvitationRecord(
            id=str(uuid.uuid4()),
            project_id=project.id,
            issuer=issuer,
            subject=body.subject,
            username=body.username,
            role=body.role,
            state=InvitationState.PENDING.value,
            message=body.message,
            created_by=principal.key,
            created_by_name=principal.username,
            created_at=now,
            expires_at=now + timedelta(days=self.settings.invitation_ttl_days),
            decided_at=None,
        )
        await self.store.add_invitation(record)
        await self.auditor.record(
            principal,
            "invitation.create",
            project=project,
            target=f"{issuer}|{body.subject or body.username}",
            detail={"role": body.role.value, "invitation": record.id},
        )
        return _invitation(record, project, now, await self._known(record))

    async def _known(self, record: InvitationRecord) -> bool:
        """Whether the invitee has used the VRE (an unknown user name may be a typo)."""
        if record.subject is not None:
            key = f"{record.issuer}|{record.subject}"
            return await self.store.known_username(key) is not None
        assert record.username is not None
        return await self.store.find_subject(record.issuer, record.username) is not None

    async def project_invitations(self, principal: Principal, slug: str) -> InvitationList:
        """Every invitation of a project (for those who manage members; read-only, so also
        in an archived project)."""
        project, _ = await self.access.require(principal, slug, Action.INVITATIONS_READ)
        now = datetime.now(UTC)
        records = await self.store.invitations(project.id)
        return InvitationList(
            items=[_invitation(r, project, now, await self._known(r)) for r in records]
        )

    async def revoke(self, principal: Principal, slug: str, invitation_id: str) -> None:
        """Withdraw a pending invitation."""
        project, _ = await self._manage(principal, slug)
        record = await self.store.invitation(invitation_id)
        if record is None or record.project_id != project.id:
            raise InvitationNotFoundError(f"no invitation {invitation_id} in {slug}")
        if record.state != InvitationState.PENDING.value:
            raise InvitationStateError(f"the invitation is {record.state}")
        await self.store.set_invitation_state(record.id, "revoked", datetime.now(UTC))
        await self.auditor.record(principal, "invitation.revoke", project=project, target=record.id)

    async def mine(self, principal: Principal) -> InvitationList:
        """Pending invitations addressed to the caller."""
        now = datetime.now(UTC)
        records = [r for r in await self.store.invitations_for(principal) if r.expires_at > now]
        projects = await self.store.get_many([r.project_id for r in records])
        return InvitationList(items=[_invitation(r, projects[r.project_id], now) for r in records])

    async def _addressed(
        self, principal: Principal, invitation_id: str
    ) -> tuple[InvitationRecord, ProjectRecord]:
        record = await self.store.invitation(invitation_id)
        matches = (
            record is not None
            and record.issuer == principal.issuer
            and (
                record.subject == principal.subject
                if record.subject is not None
                else record.username == principal.username
            )
        )
        if record is None or not matches:
            raise InvitationNotFoundError(f"no invitation {invitation_id} for you")
        projects = await self.store.get_many([record.project_id])
        project = projects.get(record.project_id)
        if project is None:
            raise InvitationNotFoundError(f"no invitation {invitation_id} for you")
        if record.state != InvitationState.PENDING.value:
            raise InvitationStateError(f"the invitation is {record.state}")
        if record.expires_at <= datetime.now(UTC):
            raise InvitationStateError("the invitation has expired")
        return record, project

    async def accept(self, principal: Principal, invitation_id: str) -> Member:
        """The invitee joins with the invited role (or keeps a stronger one they have)."""
        record, project = await self._addressed(principal, invitation_id)
        if project.archived:
            raise ProjectArchivedError(f"the project {project.slug} is archived (read-only)")
        now = datetime.now(UTC)
        member = await self.store.member(project.id, key=principal.key)
        if member is None:
            member = MemberRecord(
                id=str(uuid.uuid4()),
                project_id=project.id,
                principal_key=principal.key,
                issuer=principal.issuer,
                subject=principal.subject,
                username=principal.username,
                role=record.role,
                added_by=record.created_by,
                added_at=now,
            )
            await self.store.add_member(member)
        else:
            role = strongest(member.role, record.role)
            assert role is not None
            await self.store.set_role(member.id, role)
            member = member.model_copy(update={"role": role})
        await self.store.set_invitation_state(record.id, "accepted", now)
        await self.auditor.record(
            principal,
            "invitation.accept",
            project=project,
            target=principal.key,
            detail={"role": member.role.value, "invitation": record.id},
        )
        return _member(member)

    async def decline(self, principal: Principal, invitation_id: str) -> None:
        """The invitee says no."""
        record, project = await self._addressed(principal, invitation_id)
        await self.store.set_invitation_state(record.id, "declined", datetime.now(UTC))
        await self.auditor.record(
            principal, "invitation.decline", project=project, target=record.id
        )
