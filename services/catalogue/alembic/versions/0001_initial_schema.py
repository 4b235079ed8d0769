"""Initial schema: entries, releases, persons, facets, environments, harvest jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:38:11.583995
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

FTS_TABLE = "software_fts"  # the name schema.FTS_TABLE had when this revision was written

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "harvest_job",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("community", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("versions_added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_job")),
    )
    op.create_index(op.f("ix_harvest_job_community"), "harvest_job", ["community"], unique=False)

    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_key", sa.String(length=600), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("orcid", sa.String(length=19), nullable=True),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("affiliation", sa.String(length=600), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("person_key", name=op.f("uq_person_person_key")),
    )
    op.create_index(op.f("ix_person_orcid"), "person", ["orcid"], unique=False)

    op.create_table(
        "software",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("name_key", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("registrant_key", sa.String(length=600), nullable=False),
        sa.Column("registrant_name", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("community", sa.String(length=100), nullable=True),
        sa.Column("zenodo_concept_id", sa.String(length=50), nullable=True),
        sa.Column("latest_version", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "search_tsv", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_software")),
        sa.UniqueConstraint("name_key", name=op.f("uq_software_name_key")),
        sa.UniqueConstraint("zenodo_concept_id", name=op.f("uq_software_zenodo_concept_id")),
    )
    op.create_index(op.f("ix_software_community"), "software", ["community"], unique=False)
    op.create_index(
        op.f("ix_software_registrant_key"), "software", ["registrant_key"], unique=False
    )
    op.create_index(op.f("ix_software_updated_at"), "software", ["updated_at"], unique=False)

    op.create_table(
        "software_term",
        sa.Column("software_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.Column("value_key", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["software_id"],
            ["software.id"],
            name=op.f("fk_software_term_software_id_software"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("software_id", "kind", "value", name=op.f("pk_software_term")),
    )
    op.create_index(
        "ix_software_term_kind_value", "software_term", ["kind", "value_key"], unique=False
    )

    op.create_table(
        "software_version",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("software_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("date_published", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("codemeta", sa.JSON(), nullable=False),
        sa.Column("codemeta_version", sa.String(length=10), nullable=False),
        sa.Column("licenses", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("programming_languages", sa.JSON(), nullable=False),
        sa.Column("runtime_platforms", sa.JSON(), nullable=False),
        sa.Column("code_repository", sa.String(length=2000), nullable=True),
        sa.Column("readme", sa.String(length=2000), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("zenodo_record_id", sa.String(length=50), nullable=True),
        sa.Column("source_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["software_id"],
            ["software.id"],
            name=op.f("fk_software_version_software_id_software"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_software_version")),
        sa.UniqueConstraint("software_id", "version", name=op.f("uq_software_version_software_id")),
    )
    op.create_index(
        op.f("ix_software_version_software_id"), "software_version", ["software_id"], unique=False
    )
    op.create_index(
        op.f("ix_software_version_zenodo_record_id"),
        "software_version",
        ["zenodo_record_id"],
        unique=False,
    )

    op.create_table(
        "environment",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("image", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["software_version.id"],
            name=op.f("fk_environment_version_id_software_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_environment")),
        sa.UniqueConstraint("version_id", "kind", "image", name=op.f("uq_environment_version_id")),
    )
    op.create_index(op.f("ix_environment_version_id"), "environment", ["version_id"], unique=False)

    op.create_table(
        "software_identifier",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("software_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["software_id"],
            ["software.id"],
            name=op.f("fk_software_identifier_software_id_software"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["software_version.id"],
            name=op.f("fk_software_identifier_version_id_software_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_software_identifier")),
    )
    op.create_index(
        op.f("ix_software_identifier_software_id"),
        "software_identifier",
        ["software_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_software_identifier_value"), "software_identifier", ["value"], unique=False
    )
    op.create_index(
        op.f("ix_software_identifier_version_id"),
        "software_identifier",
        ["version_id"],
        unique=False,
    )

    op.create_table(
        "version_person",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_version_person_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["software_version.id"],
            name=op.f("fk_version_person_version_id_software_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "role", "position", name=op.f("pk_version_person")),
    )
    op.create_index(
        op.f("ix_version_person_person_id"), "version_person", ["person_id"], unique=False
    )

    # Full-text search: each dialect its own structure (kept out of `alembic check`).
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
            "name, description, keywords, authors, tokenize='porter unicode61')"
        )
    elif bind.dialect.name == "postgresql":
        op.create_index(
            "ix_software_search_tsv", "software", ["search_tsv"], postgresql_using="gin"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    for table in (
        "version_person",
        "software_identifier",
        "environment",
        "software_version",
        "software_term",
        "software",
        "person",
        "harvest_job",
    ):
        op.drop_table(table)
