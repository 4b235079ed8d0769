"""Every service's models and migrations agree (`alembic check` after `upgrade head`) on a
fresh PostgreSQL and on SQLite, and every service refuses a stale schema the same way; the
alembic command line works in every service's folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vre_common.db import Database
from vre_common.migrations import Migrations, SchemaOutOfDateError
from vre_common.settings import DatabaseSettings

REPO = Path(__file__).resolve().parents[1]
SERVICES = ["catalogue", "datalake", "gateway", "ivoa", "workflows", "zenodo"]


@pytest.mark.parametrize("service", SERVICES)
async def test_models_and_migrations_agree(service: str, empty_db_url: str) -> None:
    migrations = Migrations(service)
    database = Database(DatabaseSettings(url=empty_db_url))
    try:
        with pytest.raises(SchemaOutOfDateError, match=f"vre-migrate {service}"):
            await migrations.require_current(database.engine)
        await migrations.upgrade(database.engine)
        await migrations.check_models(database.engine)  # alembic check: raises on a difference
        await migrations.require_current(database.engine)
        await migrations.upgrade(database.engine)  # idempotent
        await migrations.downgrade(database.engine, "base")  # every migration reverses
        with pytest.raises(SchemaOutOfDateError, match="revision none"):
            await migrations.require_current(database.engine)
        await migrations.upgrade(database.engine)
        await migrations.check_models(database.engine)
    finally:
        await database.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_an_in_memory_database_is_migrated_through_the_apps_engine(service: str) -> None:
    migrations = Migrations(service)
    database = Database(DatabaseSettings(url="sqlite+aiosqlite:///:memory:"))
    try:
        await migrations.upgrade(database.engine)
        await migrations.require_current(database.engine)
    finally:
        await database.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_the_alembic_command_line(service: str, tmp_path: Path) -> None:
    """`alembic -c services/<service>/alembic.ini upgrade head`, then `check`: the URL from
    the service's settings, as `vre-migrate` reads it."""
    setting = (
        "VRE_DATABASE__URL" if service == "gateway" else f"VRE_{service.upper()}_DATABASE__URL"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRE_")}
    env[setting] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    alembic = [sys.executable, "-m", "alembic", "-c", str(REPO / f"services/{service}/alembic.ini")]
    for command in ("upgrade head", "check"):
        done = subprocess.run(
            [*alembic, *command.split()],
            check=False,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
        )
        assert done.returncode == 0, done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
