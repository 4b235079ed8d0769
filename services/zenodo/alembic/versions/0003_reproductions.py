"""Reproductions of published results (issue 21).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "reproductions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=512), nullable=False),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("doi", sa.String(length=255), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("project", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tolerance", sa.Float(), nullable=False),
        sa.Column("original_run_id", sa.String(length=255), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("log", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reproductions")),
    )
    with op.batch_alter_table("reproductions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reproductions_owner_created", ["owner", "created_at"], unique=False
        )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("reproductions", schema=None) as batch_op:
        batch_op.drop_index("ix_reproductions_owner_created")
    op.drop_table("reproductions")
