"""The catalogue's tables (SQLAlchemy 2, typed). DDL lives in the Alembic migrations.

Search structures that only one dialect has are created by the migrations and kept out of
``alembic check`` (see ``alembic/env.py``): the SQLite FTS5 table ``software_fts`` and the
PostgreSQL GIN index on ``software.search_tsv`` (a column that stays NULL on SQLite).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from vre_common.db import NAMING_CONVENTION, Base

# Objects that exist on one dialect only carry info={"only_dialect": ...}.
ONLY_DIALECT = "only_dialect"
FTS_TABLE = "software_fts"


class CatalogueBase(Base):
    """Declarative base with the catalogue's own metadata (other services have theirs)."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SoftwareRow(CatalogueBase):
    """A catalogue entry; the denormalised columns mirror its latest release."""

    __tablename__ = "software"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    registrant_key: Mapped[str] = mapped_column(String(600), index=True)
    registrant_name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(20))
    community: Mapped[str | None] = mapped_column(String(100), index=True)
    project: Mapped[str | None] = mapped_column(String(32), index=True)
    zenodo_concept_id: Mapped[str | None] = mapped_column(String(50), unique=True)
    latest_version: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    search_tsv: Mapped[Any | None] = mapped_column(
        Text().with_variant(TSVECTOR(), "postgresql"), nullable=True
    )

    __table_args__ = (
        Index(
            "ix_software_search_tsv",
            "search_tsv",
            postgresql_using="gin",
            info={ONLY_DIALECT: "postgresql"},
        ),
    )


class VersionRow(CatalogueBase):
    """One release: its codemeta.json as registered, and what was derived from it."""

    __tablename__ = "software_version"
    __table_args__ = (UniqueConstraint("software_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    software_id: Mapped[int] = mapped_column(
        ForeignKey("software.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(100))
    date_published: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    codemeta: Mapped[dict[str, Any]] = mapped_column(JSON)
    codemeta_version: Mapped[str] = mapped_column(String(10))
    licenses: Mapped[list[str]] = mapped_column(JSON)
    keywords: Mapped[list[str]] = mapped_column(JSON)
    programming_languages: Mapped[list[str]] = mapped_column(JSON)
    runtime_platforms: Mapped[list[str]] = mapped_column(JSON)
    code_repository: Mapped[str | None] = mapped_column(String(2000))
    readme: Mapped[str | None] = mapped_column(String(2000))
    source: Mapped[str] = mapped_column(String(20))
    zenodo_record_id: Mapped[str | None] = mapped_column(String(50), index=True)
    source_updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PersonRow(CatalogueBase):
    """A person or organisation, shared by the releases that credit them (keyed by ORCID
    when there is one, else by name and e-mail)."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_key: Mapped[str] = mapped_column(String(600), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(300))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    orcid: Mapped[str | None] = mapped_column(String(19), index=True)
    email: Mapped[str | None] = mapped_column(String(300))
    affiliation: Mapped[str | None] = mapped_column(String(600))


class CreditRow(CatalogueBase):
    """A person's role on a release, in document order."""

    __tablename__ = "version_person"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("software_version.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)


class IdentifierRow(CatalogueBase):
    """An identifier of a release (DOI, URL, other), to find the entry it belongs to."""

    __tablename__ = "software_identifier"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    software_id: Mapped[int] = mapped_column(
        ForeignKey("software.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("software_version.id", ondelete="CASCADE"), index=True
    )
    scheme: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(1000), index=True)


class TermRow(CatalogueBase):
    """A facet value of an entry (from its latest release): keyword, license, language,
    platform, community."""

    __tablename__ = "software_term"

    software_id: Mapped[int] = mapped_column(
        ForeignKey("software.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(300), primary_key=True)
    value_key: Mapped[str] = mapped_column(String(300))

    __table_args__ = (Index("ix_software_term_kind_value", "kind", "value_key"),)


class EnvironmentRow(CatalogueBase):
    """A container image or environment of a release."""

    __tablename__ = "environment"
    __table_args__ = (UniqueConstraint("version_id", "kind", "image"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("software_version.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    image: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HarvestJobRow(CatalogueBase):
    """A harvest of a Zenodo community, with its window, progress and counts."""

    __tablename__ = "harvest_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    community: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20))
    full: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    versions_added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)
