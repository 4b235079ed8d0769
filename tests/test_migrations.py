"""Every service's models and migrations agree (`alembic check` after `upgrade head`) on a
fresh PostgreSQL and on SQLite, and every service refuses a stale schema the same way."""

from __future__ import annotations

import pytest

from vre_common.db import Database
from vre_common.migrations import Migrations, SchemaOutOfDateError
from vre_common.settings import DatabaseSettings

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
