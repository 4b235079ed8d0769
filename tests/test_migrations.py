"""Every service's models and migrations agree (`alembic check` after `upgrade head`) on a
fresh PostgreSQL and on SQLite, and every service refuses a stale schema the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vre_common.db import Database
from vre_common.migrations import Migrations, SchemaOutOfDateError
from vre_common.settings import DatabaseSettings

SERVICES = ["catalogue", "datalake", "gateway", "ivoa", "workflows", "zenodo"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")  # a new database, dropped after
    yield url


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
