"""Projects, members, group bindings, invitations: what the API accepts and answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vre_common.policy import Role, Visibility
from vre_common.types import VISIBLE, WEB_URL_PATTERN, check_exactly_one_of, exactly_one_of

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
GROUP_PATTERN = rf"^/{VISIBLE}{{1,254}}$"


class Link(BaseModel):
    """A link shown on the project page (repository, paper, wiki …)."""

    title: str = Field(min_length=1, max_length=200, examples=["Analysis code"])
    url: str = Field(pattern=WEB_URL_PATTERN, max_length=2000)


class ProjectCreate(BaseModel):
    """What a user gives to create a project."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["CTA dark matter"])
    slug: str | None = Field(
        default=None,
        pattern=SLUG_PATTERN,
        description="URL and scope name (lower case, digits, '-'); derived from the name if "
        "absent. The Data Lake scope is <prefix><slug>.",
        examples=["cta-dm"],
    )
    description: str = Field(default="", max_length=10_000)
    visibility: Visibility = Visibility.PRIVATE
    links: list[Link] = Field(default_factory=list, max_length=20)


class ProjectUpdate(BaseModel):
    """Fields to change (absent ones are kept)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    visibility: Visibility | None = None
    links: list[Link] | None = Field(default=None, max_length=20)


class Project(BaseModel):
    """A Science Project, as the caller sees it."""

    slug: str
    name: str
    description: str
    visibility: Visibility
    scope: str = Field(description="The project's Data Lake scope.")
    archived: bool
    links: list[Link]
    created_at: datetime
    updated_at: datetime
    role: Role | None = Field(
        default=None, description="The caller's role (direct or through a bound group)."
    )


class ProjectList(BaseModel):
    """Projects the caller is in, and public ones."""

    items: list[Project]


class ProjectFilter(StrEnum):
    """Which projects ``GET /projects`` lists."""

    ALL = "all"
    MINE = "mine"
    PUBLIC = "public"


class Identity(BaseModel):
    """An IAM identity: issuer + subject, or issuer + user name (issuer defaults to yours)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=exactly_one_of("subject", "username")
    )

    issuer: str | None = Field(default=None, max_length=255)
    subject: str | None = Field(default=None, min_length=1, max_length=255)
    username: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one(self) -> Identity:
        check_exactly_one_of(self, "subject", "username")
        return self


class MemberAdd(Identity):
    """Add someone directly (by subject, or by the user name of someone seen before)."""

    role: Role = Role.MEMBER


class MemberUpdate(BaseModel):
    """Change a member's role."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class Member(BaseModel):
    """A direct member."""

    id: str
    issuer: str
    subject: str
    username: str | None
    role: Role
    added_at: datetime


class MemberList(BaseModel):
    """Direct members of a project."""

    items: list[Member]


class GroupBindingCreate(BaseModel):
    """Give everyone in an IAM group a role (owner cannot be given to a group)."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(pattern=GROUP_PATTERN, examples=["/escape/cta"])
    role: Role = Role.MEMBER


class GroupBinding(BaseModel):
    """An IAM group bound to a role."""

    group: str
    role: Role
    added_at: datetime


class GroupBindingList(BaseModel):
    """The project's group bindings."""

    items: list[GroupBinding]


class OwnershipTransfer(BaseModel):
    """Make a member owner; the caller stays as ``keep_role`` (maintainer by default)."""

    model_config = ConfigDict(extra="forbid")

    member_id: str
    keep_role: Role = Role.MAINTAINER


class InvitationState(StrEnum):
    """Where an invitation stands."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


class InvitationCreate(Identity):
    """Invite an identity to a role; they accept with ``POST /invitations/{id}/accept``."""

    role: Role = Role.MEMBER
    message: str | None = Field(default=None, max_length=1000)


class Invitation(BaseModel):
    """An invitation to a project."""

    id: str
    project: str
    project_name: str
    role: Role
    issuer: str
    subject: str | None
    username: str | None
    state: InvitationState
    message: str | None
    invited_by: str | None
    invitee_known: bool | None = Field(
        default=None,
        description="Whether the VRE has seen the invitee sign in (false: perhaps a misspelt "
        "user name; the invitation still waits for them). Answered to those who manage members.",
    )
    created_at: datetime
    expires_at: datetime


class InvitationList(BaseModel):
    """Invitations."""

    items: list[Invitation]
