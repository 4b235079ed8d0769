"""Async SQLAlchemy 2 helpers: one engine per service, one session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from vre_common.errors import BackendUnavailableError
from vre_common.pool_metrics import POOLS
from vre_common.settings import DatabaseSettings


class Base(DeclarativeBase):
    """Declarative base; each service subclasses it for its own metadata."""


# Constraint and index names of the services' metadata (their migrations spell the same names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)


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
        kwargs: dict[str, Any] = {"echo": settings.echo, "pool_pre_ping": settings.pre_ping}
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
        POOLS.track(self.engine)  # vre_db_pool_* metrics
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

    async def ping(self) -> None:
        """Readiness: the database answers."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def sync_url(url: str) -> str:
    """The synchronous driver URL for Alembic (aiosqlite → pysqlite, asyncpg → psycopg)."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def after_commit(session: AsyncSession, callback: Callable[[], object]) -> None:
    """Call ``callback`` once ``session`` has committed (never, if it rolls back): the one way
    to start work that must see the transaction's rows (a job, a relay's wake-up)."""
    event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)
