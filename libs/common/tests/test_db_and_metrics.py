"""The DB helper on SQLite and PostgreSQL, and the metrics every app exports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import String, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vre_common.app import create_base_app
from vre_common.db import Database
from vre_common.errors import BackendUnavailableError
from vre_common.settings import DatabaseSettings
from vre_common.testing import app_client


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(100))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/t.db"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(DatabaseSettings(url=url))
    try:
        yield db
    finally:
        await db.dispose()


async def test_session_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(_Base.metadata.create_all)
    gen = database.session()
    session = await anext(gen)
    session.add(Note(text="kept"))
    with pytest.raises(StopAsyncIteration):
        await anext(gen)
    gen = database.session()
    session = await anext(gen)
    session.add(Note(text="lost"))
    with pytest.raises(ValueError, match="boom"):
        await gen.athrow(ValueError("boom"))
    async with database.sessionmaker() as check:
        texts = (await check.scalars(select(Note.text))).all()
    assert texts == ["kept"]


async def test_unreachable_database_is_503() -> None:
    db = Database(DatabaseSettings(url="postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    gen = db.session()
    session = await anext(gen)
    with pytest.raises(OSError, match="Connect") as failure:  # what the driver raises
        await session.execute(text("select 1"))
    # the request-scoped session turns it into a 503 problem
    with pytest.raises(BackendUnavailableError):
        await gen.athrow(failure.value)
    await db.dispose()


@pytest.mark.parametrize("pre_ping", [True, False])
async def test_a_connection_the_server_dropped_costs_a_request_only_without_pre_ping(
    postgres_url: str, pre_ping: bool
) -> None:
    """``pre_ping`` checks a pooled connection before use: a backend the server ended is
    replaced unseen. Without it (the embedded mode, whose server lives with the process) the
    next use fails once, and the pool then opens a fresh connection."""
    db = Database(DatabaseSettings(url=postgres_url, pool_size=1, pre_ping=pre_ping))
    other = Database(DatabaseSettings(url=postgres_url))
    try:
        async with db.sessionmaker() as session:
            pid = await session.scalar(text("select pg_backend_pid()"))
        async with other.sessionmaker() as session:
            assert await session.scalar(text(f"select pg_terminate_backend({int(pid)})"))
        async with db.sessionmaker() as session:
            if pre_ping:
                assert await session.scalar(text("select pg_backend_pid()")) != pid
            else:
                with pytest.raises(DBAPIError) as failure:
                    await session.scalar(text("select 1"))
                assert failure.value.connection_invalidated
        async with db.sessionmaker() as session:
            assert await session.scalar(text("select pg_backend_pid()")) != pid
    finally:
        await db.dispose()
        await other.dispose()


async def test_metrics_count_requests_by_route_template() -> None:
    app: FastAPI = create_base_app(service="metricsdemo", title="m", description="m")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with app_client(app) as client:
        for i in range(3):
            assert (await client.get(f"/items/{i}")).status_code == 200
        await client.get("/nothing-here")
        body = (await client.get("/metrics")).text
    expected = (
        'vre_http_requests_total{method="GET",route="/items/{item_id}",'
        'service="metricsdemo",status="200"} 3.0'
    )
    assert expected in body
    assert 'route="<unmatched>",service="metricsdemo",status="404"' in body
    assert "/items/1" not in body
