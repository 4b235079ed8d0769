"""Alembic migrations of a service's own database, run through the app's async engine.

Running through the app's engine (not a second one built from the URL) is what lets an
in-memory SQLite database be migrated, and keeps one code path for the app, the CLI and the
tests. Each service makes one :class:`Migrations` for its ``alembic/`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, engine_from_config, pool
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

    async def prepare(self, engine: AsyncEngine, mode: Literal["upgrade", "verify"]) -> None:
        """At start-up: :meth:`upgrade` (``mode="upgrade"``) or :meth:`verify` the schema."""
        if mode == "upgrade":
            await self.upgrade(engine)
        else:
            await self.verify(engine)

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


def run_alembic_env(target_metadata: MetaData) -> None:
    """The body of a service's ``alembic/env.py``: migrate through the connection the app
    passes in ``config.attributes["connection"]`` (or one made from ``sqlalchemy.url`` for
    the CLI), or emit SQL offline; SQLite ALTERs in batch mode."""

    def configure_and_run(**kwargs: Any) -> None:
        context.configure(target_metadata=target_metadata, render_as_batch=True, **kwargs)
        with context.begin_transaction():
            context.run_migrations()

    config = context.config
    if context.is_offline_mode():
        configure_and_run(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        configure_and_run(connection=connection, compare_type=True)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as new_connection:
        configure_and_run(connection=new_connection, compare_type=True)
