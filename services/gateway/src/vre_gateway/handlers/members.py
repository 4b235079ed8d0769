"""Members, group bindings, invitations, leaving and ownership transfer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from vre_common.problems import problem_responses
from vre_gateway.handlers.deps import KnownUser, ServicesDep
from vre_gateway.models.projects import (
    GROUP_PATTERN,
    GroupBinding,
    GroupBindingCreate,
    GroupBindingList,
    Invitation,
    InvitationCreate,
    InvitationList,
    Member,
    MemberAdd,
    MemberList,
    MemberUpdate,
    OwnershipTransfer,
)

router = APIRouter(tags=["members"])
P = "/projects/{slug}"


@router.get(
    P + "/members",
    summary="List members",
    description="Direct members with their roles (group bindings: `/groups`).",
    responses=problem_responses(401, 404),
)
async def list_members(slug: str, user: KnownUser, services: ServicesDep) -> MemberList:
    return await services.members.members(user, slug)


@router.post(
    P + "/members",
    status_code=201,
    summary="Add a member",
    description="By IAM subject (with the issuer, default the caller's), or by the user name "
    "of someone who has used the VRE before. Owner role: owners only.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_member(slug: str, body: MemberAdd, user: KnownUser, services: ServicesDep) -> Member:
    return await services.members.add(user, slug, body)


@router.patch(
    P + "/members/{member_id}",
    summary="Change a member's role",
    description="Granting or taking the owner role: owners only; the last owner stays (409).",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def change_member_role(
    slug: str, member_id: str, body: MemberUpdate, user: KnownUser, services: ServicesDep
) -> Member:
    return await services.members.change_role(user, slug, member_id, body.role)


@router.delete(
    P + "/members/{member_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a member",
    description="Removing an owner: owners only; the last owner stays (409).",
    responses=problem_responses(401, 403, 404, 409),
)
async def remove_member(slug: str, member_id: str, user: KnownUser, services: ServicesDep) -> None:
    await services.members.remove(user, slug, member_id)


@router.post(
    P + "/leave",
    status_code=204,
    response_class=Response,
    summary="Leave a project",
    description="Ends the caller's direct membership (409 for the last owner).",
    responses=problem_responses(401, 404, 409),
)
async def leave_project(slug: str, user: KnownUser, services: ServicesDep) -> None:
    await services.members.leave(user, slug)


@router.post(
    P + "/transfer",
    summary="Transfer ownership",
    description="An owner makes another member owner and keeps `keep_role` (maintainer by "
    "default; `owner` to share ownership).",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def transfer_ownership(
    slug: str, body: OwnershipTransfer, user: KnownUser, services: ServicesDep
) -> Member:
    return await services.members.transfer(user, slug, body)


@router.get(
    P + "/groups",
    summary="List group bindings",
    description="IAM groups whose members have a role in the project.",
    responses=problem_responses(401, 404),
)
async def list_groups(slug: str, user: KnownUser, services: ServicesDep) -> GroupBindingList:
    return await services.members.groups(user, slug)


@router.post(
    P + "/groups",
    summary="Bind a group to a role",
    description="Everyone in the IAM group gets the role (created or changed; maintainer at "
    "most). A member's role is the highest of direct membership and bound groups.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def bind_group(
    slug: str, body: GroupBindingCreate, user: KnownUser, services: ServicesDep
) -> GroupBinding:
    return await services.members.bind(user, slug, body)


@router.delete(
    P + "/groups",
    status_code=204,
    response_class=Response,
    summary="Unbind a group",
    description="The group's members keep only their direct roles.",
    responses=problem_responses(401, 403, 404, 409),
)
async def unbind_group(
    slug: str,
    group: Annotated[str, Query(pattern=GROUP_PATTERN)],
    user: KnownUser,
    services: ServicesDep,
) -> None:
    await services.members.unbind(user, slug, group)


@router.get(
    P + "/invitations",
    summary="List a project's invitations",
    description="For those who manage members.",
    responses=problem_responses(401, 403, 404),
)
async def list_project_invitations(
    slug: str, user: KnownUser, services: ServicesDep
) -> InvitationList:
    return await services.members.project_invitations(user, slug)


@router.post(
    P + "/invitations",
    status_code=201,
    summary="Invite someone",
    description="By IAM subject or user name (issuer: the caller's by default). Nothing "
    "changes until the invitee accepts.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def invite(
    slug: str, body: InvitationCreate, user: KnownUser, services: ServicesDep
) -> Invitation:
    return await services.members.invite(user, slug, body)


@router.delete(
    P + "/invitations/{invitation_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an invitation",
    description="Only pending invitations can be revoked.",
    responses=problem_responses(401, 403, 404, 409),
)
async def revoke_invitation(
    slug: str, invitation_id: str, user: KnownUser, services: ServicesDep
) -> None:
    await services.members.revoke(user, slug, invitation_id)


@router.get(
    "/invitations",
    summary="My invitations",
    description="Pending invitations addressed to the caller.",
    responses=problem_responses(401),
)
async def my_invitations(user: KnownUser, services: ServicesDep) -> InvitationList:
    return await services.members.mine(user)


@router.post(
    "/invitations/{invitation_id}/accept",
    summary="Accept an invitation",
    description="Only the invited identity can; the caller becomes a member with the role.",
    responses=problem_responses(401, 404, 409),
)
async def accept_invitation(invitation_id: str, user: KnownUser, services: ServicesDep) -> Member:
    return await services.members.accept(user, invitation_id)


@router.post(
    "/invitations/{invitation_id}/decline",
    status_code=204,
    response_class=Response,
    summary="Decline an invitation",
    description="Only the invited identity can.",
    responses=problem_responses(401, 404, 409),
)
async def decline_invitation(invitation_id: str, user: KnownUser, services: ServicesDep) -> None:
    await services.members.decline(user, invitation_id)
