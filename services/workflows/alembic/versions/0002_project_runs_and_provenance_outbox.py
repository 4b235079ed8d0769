"""Runs of Science Projects (runs.project) and the provenance outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:51:22.778320
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
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

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("project", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_runs_project_created", ["project", "created_at"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_project_created")
        batch_op.drop_column("project")

    with op.batch_alter_table("provenance_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_provenance_outbox_due")

    op.drop_table("provenance_outbox")
