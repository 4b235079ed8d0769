"""Alembic migrations of the ivoa database (the shared runner in vre_common.migrations)."""

from __future__ import annotations

from pathlib import Path

from vre_common.migrations import Migrations, SchemaOutOfDateError

# services/ivoa/alembic, next to the package (installed editable).
ALEMBIC_DIR = Path(__file__).resolve().parents[3] / "alembic"

MIGRATIONS = Migrations(
    ALEMBIC_DIR,
    service="ivoa",
    how_to_upgrade="run the migrations (vre-migrate ivoa) or set migrations='upgrade'",
)
alembic_config = MIGRATIONS.config
upgrade = MIGRATIONS.upgrade
check_models = MIGRATIONS.check_models
verify = MIGRATIONS.verify

__all__ = [
    "ALEMBIC_DIR",
    "SchemaOutOfDateError",
    "alembic_config",
    "check_models",
    "upgrade",
    "verify",
]
