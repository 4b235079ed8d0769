"""Internal records the stores return (API models are built from them by the services)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from vre_common.policy import Role, Visibility


def utc(value: datetime) -> datetime:
    """SQLite forgets the time zone: every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    """:func:`utc` for nullable columns."""
    return None if value is None else utc(value)


UtcTime = Annotated[datetime, AfterValidator(utc)]
OptUtcTime = Annotated[datetime | None, AfterValidator(utc_or_none)]


class _Record(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class ProjectRecord(_Record):
    """A project row."""

    id: str
    slug: str
    scope: str
    name: str
    description: str
    visibility: Visibility
    archived: bool
    links: list[dict[str, Any]]
    created_by: str
    created_at: UtcTime
    updated_at: UtcTime


class MemberRecord(_Record):
    """A membership row."""

    id: str
    project_id: str
    principal_key: str
    issuer: str
    subject: str
    username: str | None
    role: Role
    added_by: str
    added_at: UtcTime


class GroupBindingRecord(_Record):
    """A group binding row."""

    project_id: str
    group: str
    role: Role
    added_by: str
    added_at: UtcTime


class InvitationRecord(_Record):
    """An invitation row."""

    id: str
    project_id: str
    issuer: str
    subject: str | None
    username: str | None
    role: Role
    state: str
    message: str | None
    created_by: str
    created_by_name: str | None
    created_at: UtcTime
    expires_at: UtcTime
    decided_at: OptUtcTime


class AuditRecord(_Record):
    """An audit row."""

    id: int
    at: UtcTime
    project_id: str | None
    project_slug: str | None
    actor: str
    actor_name: str | None
    source: str
    action: str
    target: str | None
    request_id: str | None
    detail: dict[str, Any]


class NodeRecord(_Record):
    """A provenance node row."""

    id: str
    category: str
    type: str
    project_id: str | None
    label: str | None
    actor: str | None
    actor_name: str | None
    started_at: OptUtcTime
    ended_at: OptUtcTime
    invalidated_at: OptUtcTime
    attributes: dict[str, Any]


class EdgeRecord(_Record):
    """A provenance edge row."""

    src: str
    dst: str
    relation: str
