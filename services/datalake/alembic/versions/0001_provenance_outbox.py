"""The provenance outbox (events waiting for the gateway).

Revision ID: 0001
Revises:
Create Date: 2026-12-07 04:10:00.000000
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
    op.create_index(
        "ix_provenance_outbox_due", "provenance_outbox", ["state", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_provenance_outbox_due", table_name="provenance_outbox")
    op.drop_table("provenance_outbox")
