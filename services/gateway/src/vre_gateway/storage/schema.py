"""The gateway's tables: projects, memberships, invitations, audit log, provenance graph."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vre_common.db import NAMING_CONVENTION

KEY = 512  # "iss|sub"
ENTITY = 600  # provenance ids


class GatewayBase(DeclarativeBase):
    """Declarative base of the gateway's own database."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProjectRow(GatewayBase):
    """A Science Project."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    scope: Mapped[str] = mapped_column(String(25), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16))
    archived: Mapped[bool] = mapped_column(Boolean)
    links: Mapped[list[Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(KEY))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MemberRow(GatewayBase):
    """A direct membership: one IAM identity, one role."""

    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "principal_key", name="uq_project_members_identity"),
        Index("ix_project_members_principal_key", "principal_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("projects.id", ondelete="CASCADE")
    )
    principal_key: Mapped[str] = mapped_column(String(KEY))
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[str] = mapped_column(String(KEY))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GroupBindingRow(GatewayBase):
    """Everyone in an IAM group has a role in the project."""

    __tablename__ = "project_groups"
    __table_args__ = (Index("ix_project_groups_group", "group"),)

    project_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[str] = mapped_column(String(KEY))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvitationRow(GatewayBase):
    """An invitation for one IAM identity (by subject or by user name) to take a role."""

    __tablename__ = "project_invitations"
    __table_args__ = (
        Index("ix_project_invitations_project_id", "project_id"),
        Index("ix_project_invitations_invitee", "issuer", "subject"),
        Index("ix_project_invitations_invitee_name", "issuer", "username"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("projects.id", ondelete="CASCADE")
    )
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(KEY))
    created_by_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KnownUserRow(GatewayBase):
    """An identity seen by the gateway: lets owners add members by user name."""

    __tablename__ = "known_users"
    __table_args__ = (Index("ix_known_users_name", "issuer", "username"),)

    key: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(GatewayBase):
    """One write: who did what to which project, when, under which request id."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_project", "project_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    project_id: Mapped[str | None] = mapped_column(String(36))
    project_slug: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(KEY))
    actor_name: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(ENTITY))
    request_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ProvEventRow(GatewayBase):
    """A provenance event received (its id makes delivery idempotent)."""

    __tablename__ = "prov_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    service: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProvNodeRow(GatewayBase):
    """An entity (DID, DOI …) or an activity (run, upload, publish …) of the graph."""

    __tablename__ = "prov_nodes"
    __table_args__ = (Index("ix_prov_nodes_project_id", "project_id"),)

    id: Mapped[str] = mapped_column(String(ENTITY), primary_key=True)
    category: Mapped[str] = mapped_column(String(16))  # entity | activity
    type: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str | None] = mapped_column(String(36))
    label: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(KEY))
    actor_name: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invalidated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)


class ProvEdgeRow(GatewayBase):
    """``activity used entity`` or ``entity wasGeneratedBy activity``."""

    __tablename__ = "prov_edges"
    __table_args__ = (Index("ix_prov_edges_dst", "dst", "relation"),)

    src: Mapped[str] = mapped_column(String(ENTITY), primary_key=True)
    dst: Mapped[str] = mapped_column(String(ENTITY), primary_key=True)
    relation: Mapped[str] = mapped_column(String(24), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSessionRow(GatewayBase):
    """A browser session: the user's tokens, encrypted, behind an HttpOnly cookie.

    ``id`` is the SHA-256 of the cookie's value, so the table alone does not open a session.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(KEY), index=True)
    username: Mapped[str] = mapped_column(String(200))
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
