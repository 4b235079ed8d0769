"""The ivoa service's tables (SQLAlchemy 2, typed); migrations in services/ivoa/alembic."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vre_common.db import NAMING_CONVENTION, Base, UtcDateTime
from vre_common.provenance.outbox import outbox_table


class IvoaBase(Base):
    """Declarative base of this service's tables (its own metadata)."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class QueryRow(IvoaBase):
    """A query job: what was asked of which service, where the result goes, how it went."""

    __tablename__ = "ivoa_queries"
    __table_args__ = (Index("ix_ivoa_queries_owner_created", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(512))
    owner_name: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(63))
    service_type: Mapped[str] = mapped_column(String(8))
    query: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    upload: Mapped[str | None] = mapped_column(String(300))
    upload_table: Mapped[str | None] = mapped_column(String(64))
    maxrec: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[float] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(8))
    phase: Mapped[str] = mapped_column(String(16), index=True)
    scope: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(250))
    format: Mapped[str] = mapped_column(String(10))
    rse: Mapped[str | None] = mapped_column(String(100))
    project: Mapped[str | None] = mapped_column(String(32))
    remote_job: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    execution_seconds: Mapped[float | None] = mapped_column(Float)


PROVENANCE_OUTBOX = outbox_table(IvoaBase.metadata)
