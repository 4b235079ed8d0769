"""Alembic migrations of a service's own database, run through the app's async engine.

Running through the app's engine (not a second one built from the URL) is what lets an
in-memory SQLite database be migrated, and keeps one code path for the app, the CLI and the
tests. Each service makes one :class:`Migrations` for its ``alembic/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the newest migration; the app refuses to start."""


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


class Migrations:
    """Upgrade, check and verify one service's database against its Alembic scripts."""

    def __init__(self, alembic_dir: Path, *, service: str, how_to_upgrade: str) -> None:
        self.alembic_dir = alembic_dir
        self.service = service
        self.how_to_upgrade = how_to_upgrade

    def config(self, connection: Connection | None = None) -> Config:
        """An Alembic configuration for these scripts (bound to ``connection`` if given)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(self.alembic_dir))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    async def upgrade(self, engine: AsyncEngine) -> None:
        """Bring the database to the newest revision."""
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.upgrade(self.config(c), "head"))

    async def check_models(self, engine: AsyncEngine) -> None:
        """``alembic check``: raise if the models and the migrations differ."""
        async with engine.connect() as connection:
            await connection.run_sync(lambda c: command.check(self.config(c)))

    async def verify(self, engine: AsyncEngine) -> None:
        """Raise SchemaOutOfDateError unless the database is at the newest revision."""
        heads = set(ScriptDirectory.from_config(self.config()).get_heads())
        async with engine.connect() as connection:
            current = await connection.run_sync(_current)
        if current != heads:
            raise SchemaOutOfDateError(
                f"the {self.service} database is at revision {sorted(current) or 'none'}, "
                f"the code needs {sorted(heads)}: {self.how_to_upgrade}"
            )
