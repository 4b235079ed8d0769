"""Alembic migrations of the gateway database (the shared runner in vre_common.migrations)."""

from __future__ import annotations

from pathlib import Path

from vre_common.migrations import Migrations, SchemaOutOfDateError

# services/gateway/alembic, next to the package (installed editable).
ALEMBIC_DIR = Path(__file__).resolve().parents[3] / "alembic"

MIGRATIONS = Migrations(
    ALEMBIC_DIR,
    service="gateway",
    how_to_upgrade=(
        "run `alembic -c services/gateway/alembic.ini upgrade head` or set VRE_MIGRATIONS=upgrade"
    ),
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
