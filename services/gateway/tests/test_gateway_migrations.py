"""The gateway's Alembic migrations match its models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vre_common.db import Database
from vre_common.settings import DatabaseSettings
from vre_gateway.storage import migrations

ROOT = Path(__file__).resolve().parents[3]


async def test_alembic_check_after_upgrade(gw_db_url: str) -> None:
    database = Database(DatabaseSettings(url=gw_db_url))
    try:
        await migrations.upgrade(database.engine)
        await migrations.check_models(database.engine)  # raises if models and migrations drift
        await migrations.verify(database.engine)
        await migrations.upgrade(database.engine)  # idempotent
    finally:
        await database.dispose()


async def test_in_memory_database_is_migrated_through_the_apps_engine() -> None:
    database = Database(DatabaseSettings())
    try:
        await migrations.upgrade(database.engine)
        await migrations.check_models(database.engine)
    finally:
        await database.dispose()


def test_alembic_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alembic = [
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(ROOT / "services/gateway/alembic.ini"),
        "-x",
        f"url={url}",
    ]
    subprocess.run([*alembic, "upgrade", "head"], check=True, capture_output=True, cwd=ROOT)
    out = subprocess.run([*alembic, "check"], check=True, capture_output=True, text=True, cwd=ROOT)
    assert "No new upgrade operations detected" in out.stdout + out.stderr
