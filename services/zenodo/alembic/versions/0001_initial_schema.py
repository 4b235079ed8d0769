"""Initial schema: credentials, imports, depositions.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "depositions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=512), nullable=False),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("zenodo_id", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("bucket_url", sa.Text(), nullable=True),
        sa.Column("html_url", sa.Text(), nullable=True),
        sa.Column("doi", sa.String(length=255), nullable=True),
        sa.Column("concept_doi", sa.String(length=255), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=255), nullable=True),
        sa.Column("software_id", sa.String(length=255), nullable=True),
        sa.Column("previous_id", sa.String(length=36), nullable=True),
        sa.Column("replace_files", sa.Boolean(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_depositions")),
    )
    with op.batch_alter_table("depositions", schema=None) as batch_op:
        batch_op.create_index("ix_depositions_owner_created", ["owner", "created_at"], unique=False)
        batch_op.create_index("ix_depositions_state", ["state"], unique=False)

    op.create_table(
        "imports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=512), nullable=False),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("doi", sa.String(length=255), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=True),
        sa.Column("license", sa.String(length=255), nullable=True),
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("dataset", sa.String(length=255), nullable=False),
        sa.Column("rse", sa.String(length=255), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.create_index("ix_imports_owner_created", ["owner", "created_at"], unique=False)
        batch_op.create_index("ix_imports_state", ["state"], unique=False)

    op.create_table(
        "zenodo_credentials",
        sa.Column("owner", sa.String(length=512), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("zenodo_url", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_zenodo_credentials")),
    )
    op.create_table(
        "deposition_files",
        sa.Column("deposition_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("doi_written", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deposition_id"],
            ["depositions.id"],
            name=op.f("fk_deposition_files_deposition_id_depositions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deposition_id", "position", name=op.f("pk_deposition_files")),
    )
    op.create_table(
        "import_files",
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("did_name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
            name=op.f("fk_import_files_import_id_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "position", name=op.f("pk_import_files")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("import_files")
    op.drop_table("deposition_files")
    op.drop_table("zenodo_credentials")
    with op.batch_alter_table("imports", schema=None) as batch_op:
        batch_op.drop_index("ix_imports_state")
        batch_op.drop_index("ix_imports_owner_created")

    op.drop_table("imports")
    with op.batch_alter_table("depositions", schema=None) as batch_op:
        batch_op.drop_index("ix_depositions_state")
        batch_op.drop_index("ix_depositions_owner_created")

    op.drop_table("depositions")
