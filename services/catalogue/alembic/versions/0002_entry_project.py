"""Entries owned by a Science Project: software.project (the project's slug).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
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
    op.add_column("software", sa.Column("project", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_software_project"), "software", ["project"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_software_project"), table_name="software")
    with op.batch_alter_table("software") as batch:
        batch.drop_column("project")
