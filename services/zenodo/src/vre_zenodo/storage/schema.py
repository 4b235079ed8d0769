"""The zenodo service's tables (SQLAlchemy 2, typed); migrations in services/zenodo/alembic."""

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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vre_common.db import NAMING_CONVENTION, Base, UtcDateTime
from vre_common.provenance.outbox import outbox_table


class ZenodoBase(Base):
    """Declarative base of this service's tables (its own metadata)."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CredentialRow(ZenodoBase):
    """A user's Zenodo personal token, encrypted (Fernet)."""

    __tablename__ = "zenodo_credentials"

    owner: Mapped[str] = mapped_column(String(512), primary_key=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    zenodo_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ImportRow(ZenodoBase):
    """An import of a Zenodo record into the Data Lake."""

    __tablename__ = "imports"
    __table_args__ = (
        Index("ix_imports_owner_created", "owner", "created_at"),
        Index("ix_imports_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(512))
    owner_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(BigInteger)
    doi: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(255))
    license: Mapped[str | None] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(25))
    dataset: Mapped[str] = mapped_column(String(255))
    rse: Mapped[str | None] = mapped_column(String(255))
    warnings: Mapped[list[str]] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    files: Mapped[list[ImportFileRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="ImportFileRow.position"
    )


class ImportFileRow(ZenodoBase):
    """One file of an import."""

    __tablename__ = "import_files"

    import_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1024))
    did_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class ReproductionRow(ZenodoBase):
    """A reproduction of a published result (its checks and comparison as JSON)."""

    __tablename__ = "reproductions"
    __table_args__ = (Index("ix_reproductions_owner_created", "owner", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(512))
    owner_name: Mapped[str] = mapped_column(String(255))
    doi: Mapped[str] = mapped_column(String(255))
    record_id: Mapped[int] = mapped_column(BigInteger)
    project: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    tolerance: Mapped[float] = mapped_column(Float)
    original_run_id: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(36))
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    log: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DepositionRow(ZenodoBase):
    """A deposition made through the VRE."""

    __tablename__ = "depositions"
    __table_args__ = (
        Index("ix_depositions_owner_created", "owner", "created_at"),
        Index("ix_depositions_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(512))
    owner_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    zenodo_id: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    bucket_url: Mapped[str | None] = mapped_column(Text)
    html_url: Mapped[str | None] = mapped_column(Text)
    doi: Mapped[str | None] = mapped_column(String(255))
    concept_doi: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    sources: Mapped[list[str]] = mapped_column(JSON)
    run_id: Mapped[str | None] = mapped_column(String(255))
    software_id: Mapped[str | None] = mapped_column(String(255))
    previous_id: Mapped[str | None] = mapped_column(String(36))
    replace_files: Mapped[bool] = mapped_column(Boolean, default=False)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    files: Mapped[list[DepositionFileRow]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="DepositionFileRow.position"
    )


class DepositionFileRow(ZenodoBase):
    """One file of a deposition and where its upload got."""

    __tablename__ = "deposition_files"

    deposition_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("depositions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(25))
    name: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    md5: Mapped[str | None] = mapped_column(String(32))
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    doi_written: Mapped[bool] = mapped_column(Boolean, default=False)


# Provenance events waiting for delivery to the gateway (written with the changes they record).
PROVENANCE_OUTBOX = outbox_table(ZenodoBase.metadata)
