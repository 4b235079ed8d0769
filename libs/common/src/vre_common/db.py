"""Async SQLAlchemy 2 helpers: one engine per service, one session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from vre_common.errors import BackendUnavailableError
from vre_common.settings import DatabaseSettings


class Base(DeclarativeBase):
    """Declarative base; each service subclasses it for its own metadata."""


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """An async engine and session factory for one service's database."""

    def __init__(self, settings: DatabaseSettings) -> None:
        url = make_url(settings.url)
        kwargs: dict[str, Any] = {"echo": settings.echo, "pool_pre_ping": True}
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            else:
                from sqlalchemy.pool import StaticPool

                kwargs["poolclass"] = StaticPool
            kwargs.pop("pool_pre_ping")
        else:
            kwargs["pool_size"] = settings.pool_size
            kwargs["connect_args"] = {"timeout": 5, "command_timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.get_backend_name() == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def session(self) -> AsyncIterator[AsyncSession]:
        """A request-scoped session: committed at the end, rolled back on error.

        No other code calls ``commit()``; a database outage becomes a 503 problem.
        """
        try:
            async with self.sessionmaker() as session:
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
        except (OperationalError, InterfaceError, OSError) as exc:
            raise BackendUnavailableError("the database is unavailable", retry_after=5) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise BackendUnavailableError("the database is unavailable", retry_after=5) from exc
            raise

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """:meth:`session` as ``async with db.transaction() as session``: one unit of work
        for requests and background jobs alike (committed at the end, rolled back on error,
        a database outage raised as a 503)."""
        return asynccontextmanager(self.session)()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def sync_url(url: str) -> str:
    """The synchronous driver URL for Alembic (aiosqlite → pysqlite, asyncpg → psycopg)."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def run_migrations(alembic_dir: Path, url: str, revision: str = "head") -> None:
    """Upgrade a database to ``revision`` with the service's Alembic scripts."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir))
    cfg.set_main_option("sqlalchemy.url", sync_url(url))
    command.upgrade(cfg, revision)
