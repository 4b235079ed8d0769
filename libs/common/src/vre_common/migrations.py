"""Alembic migrations of a service's own database, run through the app's async engine.

One way for every service: its ``alembic/env.py`` is :func:`run_alembic_env`, and the app,
``vre-migrate`` and the tests use one :class:`Migrations` (``Migrations("catalogue")``).
Running through the app's engine (not a second one built from the URL) is what lets an
in-memory SQLite database be migrated, and keeps one code path for the app, the CLI and the
tests. An app that must not change its schema calls :meth:`Migrations.require_current`,
which refuses a stale one with :class:`SchemaOutOfDateError`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, engine_from_config, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from vre_common.db import sync_url
from vre_common.settings import DatabaseSettings


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the newest migration; the app refuses to start."""


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def alembic_dir_of(service: str) -> Path:
    """``services/<service>/alembic``, next to the package ``vre_<service>`` (installed
    editable, as in the images)."""
    spec = importlib.util.find_spec(f"vre_{service}")
    if spec is None or spec.origin is None:
        raise LookupError(f"no package vre_{service}")
    return Path(spec.origin).resolve().parents[2] / "alembic"


class Migrations:
    """Upgrade, check and require one service's schema against its Alembic scripts."""

    def __init__(self, service: str, *, alembic_dir: Path | None = None) -> None:
        self.service = service
        self.alembic_dir = alembic_dir or alembic_dir_of(service)

    def config(self, connection: Connection | None = None) -> Config:
        """An Alembic configuration for these scripts (bound to ``connection`` if given)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(self.alembic_dir))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def heads(self) -> set[str]:
        """The newest revisions of the scripts (what the code needs)."""
        return set(ScriptDirectory.from_config(self.config()).get_heads())

    async def current(self, engine: AsyncEngine) -> set[str]:
        """The revisions the database is at (empty before the first migration)."""
        async with engine.connect() as connection:
            return await connection.run_sync(_current)

    async def upgrade(self, engine: AsyncEngine) -> None:
        """Bring the database to the newest revision."""
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.upgrade(self.config(c), "head"))

    async def downgrade(self, engine: AsyncEngine, revision: str = "base") -> None:
        """Take the database back to ``revision`` (tests of an old schema)."""
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.downgrade(self.config(c), revision))

    async def check_models(self, engine: AsyncEngine) -> None:
        """``alembic check``: raise if the models and the migrations differ."""
        async with engine.connect() as connection:
            await connection.run_sync(lambda c: command.check(self.config(c)))

    async def require_current(self, engine: AsyncEngine) -> None:
        """How every app refuses a stale schema: raise :class:`SchemaOutOfDateError` unless
        the database is at the newest revision."""
        heads, current = self.heads(), await self.current(engine)
        if current != heads:
            raise SchemaOutOfDateError(
                f"the {self.service} database is at revision {sorted(current) or 'none'}, "
                f"the code needs {sorted(heads)}: run the migrations (vre-migrate "
                f"{self.service}) or let the service upgrade at start (its migrations "
                "setting)"
            )

    async def prepare(self, engine: AsyncEngine, mode: Literal["upgrade", "verify"]) -> None:
        """At start-up: :meth:`upgrade` (``mode="upgrade"``) or :meth:`require_current`."""
        if mode == "upgrade":
            await self.upgrade(engine)
        else:
            await self.require_current(engine)


class ServiceSettings(Protocol):
    """What the command line reads of a service's settings: its database."""

    @property
    def database(self) -> DatabaseSettings: ...


def run_alembic_env(
    target_metadata: MetaData,
    settings: Callable[[], ServiceSettings],
    **options: Any,
) -> None:
    """The body of every service's ``alembic/env.py``: migrate through the connection the
    app passes in ``config.attributes["connection"]``, or (the ``alembic`` command line) one
    made from ``-x url=…``, ``sqlalchemy.url`` or else the service's ``settings`` (its
    ``VRE_…DATABASE__URL``), or emit SQL offline; SQLite ALTERs in batch mode. ``options`` go
    to ``context.configure`` (e.g. ``include_object``)."""

    def configure_and_run(**kwargs: Any) -> None:
        context.configure(
            target_metadata=target_metadata, render_as_batch=True, **options, **kwargs
        )
        with context.begin_transaction():
            context.run_migrations()

    config = context.config
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        configure_and_run(url=url, literal_binds=True)
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        configure_and_run(connection=connection, compare_type=True)
        return
    url = url or settings().database.url
    engine = engine_from_config(
        {"sqlalchemy.url": sync_url(url)}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as new_connection:
        configure_and_run(connection=new_connection, compare_type=True)
        new_connection.commit()
    engine.dispose()
