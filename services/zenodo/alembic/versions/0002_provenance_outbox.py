"""The provenance outbox (import and publish events, delivered to the gateway).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:52:55.093611
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


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("provenance_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_provenance_outbox_due")

    op.drop_table("provenance_outbox")
