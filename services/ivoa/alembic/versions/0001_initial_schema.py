"""Query jobs and the provenance outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:23:36.504231
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
        "ivoa_queries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=512), nullable=False),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=False),
        sa.Column("service_type", sa.String(length=8), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("upload", sa.String(length=300), nullable=True),
        sa.Column("upload_table", sa.String(length=64), nullable=True),
        sa.Column("maxrec", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("rse", sa.String(length=100), nullable=True),
        sa.Column("project", sa.String(length=32), nullable=True),
        sa.Column("remote_job", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("execution_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivoa_queries")),
    )
    with op.batch_alter_table("ivoa_queries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ivoa_queries_owner_created", ["owner", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ivoa_queries_phase"), ["phase"], unique=False)

    op.create_table(
        "provenance_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provenance_outbox")),
    )
    with op.batch_alter_table("provenance_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provenance_outbox_due", ["state", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("provenance_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_provenance_outbox_due")

    op.drop_table("provenance_outbox")
    with op.batch_alter_table("ivoa_queries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ivoa_queries_phase"))
        batch_op.drop_index("ix_ivoa_queries_owner_created")

    op.drop_table("ivoa_queries")
