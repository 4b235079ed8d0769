"""Alembic migrations of the gateway, run through the app's own async engine.

Running through the app's engine (not a second one from the URL) is what lets an in-memory
SQLite database be migrated, and keeps one code path for the app, the CLI and the tests.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# services/gateway/alembic, next to the package (installed editable).
ALEMBIC_DIR = Path(__file__).resolve().parents[3] / "alembic"


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the newest migration: the gateway refuses to start."""


def alembic_config() -> Config:
    """An Alembic configuration pointing at the gateway's migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    return cfg


def _with(connection: Connection) -> Config:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(_with(connection), "head")


def _check(connection: Connection) -> None:
    command.check(_with(connection))


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the newest revision."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def check_models(engine: AsyncEngine) -> None:
    """``alembic check``: raise if the models and the migrations differ."""
    async with engine.connect() as connection:
        await connection.run_sync(_check)


async def verify(engine: AsyncEngine) -> None:
    """Raise SchemaOutOfDateError unless the database is at the newest revision."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    if current != heads:
        raise SchemaOutOfDateError(
            f"the gateway database is at revision {sorted(current) or 'none'}, the code needs "
            f"{sorted(heads)}: run `alembic -c services/gateway/alembic.ini upgrade head` or "
            "set VRE_MIGRATIONS=upgrade"
        )
