"""The workflows service's tables (SQLAlchemy 2, typed); migrations in ../alembic."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vre_common.db import NAMING_CONVENTION, Base, UtcDateTime
from vre_common.provenance.outbox import outbox_table


class WorkflowsBase(Base):
    """Declarative base of this service's tables (its own metadata)."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RunRow(WorkflowsBase):
    """A workflow run."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_owner_created", "owner", "created_at"),
        Index("ix_runs_owner_name", "owner", "name"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_project_created", "project", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(512))
    owner_name: Mapped[str] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    backend: Mapped[str] = mapped_column(String(16))
    reana_server: Mapped[str | None] = mapped_column(String(64))
    workflow_type: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    images: Mapped[list[str]] = mapped_column(JSON)
    requested_inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    destination: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    register_partial_outputs: Mapped[bool] = mapped_column(Boolean, default=False)
    output_dataset: Mapped[str | None] = mapped_column(String(600))
    provenance_did: Mapped[str | None] = mapped_column(String(1200))
    backend_ids: Mapped[dict[str, str]] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rerun_of: Mapped[str | None] = mapped_column(String(36))
    workspace_removed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    events: Mapped[list[RunEventRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="RunEventRow.id"
    )
    steps: Mapped[list[RunStepRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="RunStepRow.position"
    )
    inputs: Mapped[list[RunInputRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="RunInputRow.position"
    )
    outputs: Mapped[list[RunOutputRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="RunOutputRow.path"
    )


class RunEventRow(WorkflowsBase):
    """One status change of a run."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    detail: Mapped[str | None] = mapped_column(Text)


class RunStepRow(WorkflowsBase):
    """One step of a run."""

    __tablename__ = "run_steps"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    image: Mapped[str | None] = mapped_column(String(512))
    execution: Mapped[str | None] = mapped_column(String(16))
    commands: Mapped[list[str]] = mapped_column(JSON)
    timeout_seconds: Mapped[float | None] = mapped_column(Float)
    memory_limit: Mapped[str | None] = mapped_column(String(32))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    message: Mapped[str | None] = mapped_column(Text)


class RunInputRow(WorkflowsBase):
    """A file placed in a run's workspace before it starts."""

    __tablename__ = "run_inputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    requested: Mapped[str | None] = mapped_column(String(600))
    did: Mapped[str | None] = mapped_column(String(600))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    adler32: Mapped[str | None] = mapped_column(String(8))
    md5: Mapped[str | None] = mapped_column(String(32))
    staged_by: Mapped[str | None] = mapped_column(String(16))


class RunOutputRow(WorkflowsBase):
    """A declared output a run produced, and its DID once registered."""

    __tablename__ = "run_outputs"
    __table_args__ = (UniqueConstraint("run_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    bytes: Mapped[int] = mapped_column(BigInteger)
    adler32: Mapped[str] = mapped_column(String(8))
    md5: Mapped[str] = mapped_column(String(32))
    did: Mapped[str | None] = mapped_column(String(1200))
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ReanaCredentialRow(WorkflowsBase):
    """A user's REANA access token for one server, encrypted (Fernet)."""

    __tablename__ = "reana_credentials"

    owner: Mapped[str] = mapped_column(String(512), primary_key=True)
    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    reana_user: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


# Provenance events waiting for delivery to the gateway (written with the run's changes).
PROVENANCE_OUTBOX = outbox_table(WorkflowsBase.metadata)
