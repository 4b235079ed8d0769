"""Outbox → relay → gateway: at least once, deduplicated, and nothing lost in a crash.

A "service" here is a real database (SQLite or PostgreSQL) with an action table and the
outbox table from vre_common.provenance; the gateway is the real app, reached through the
real HTTP sink (in-process transport).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tests.gateway_support import Users, create_project
from vre_common.db import Database
from vre_common.provenance.events import Event, EventKind, IngestResult
from vre_common.provenance.ids import did_id
from vre_common.provenance.outbox import FileOutbox, SqlOutbox, outbox_table
from vre_common.provenance.relay import OutboxRelay
from vre_common.provenance.sink import HttpEventSink
from vre_common.settings import DatabaseSettings
from vre_common.testing import app_client


@dataclass
class ServiceDb:
    database: Database
    actions: Table
    outbox: SqlOutbox


@pytest.fixture
async def service_db(gw_db_url: str, tmp_path: Path) -> AsyncIterator[ServiceDb]:
    """The database of a service: an action table and its outbox (own tables, own names)."""
    suffix = uuid.uuid4().hex[:8]
    metadata = MetaData()
    actions = Table(
        f"svc_actions_{suffix}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("did", String(200), nullable=False),
    )
    table = outbox_table(metadata, f"svc_outbox_{suffix}")
    url = gw_db_url if "postgresql" in gw_db_url else f"sqlite+aiosqlite:///{tmp_path / 'svc.db'}"
    database = Database(DatabaseSettings(url=url))
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield ServiceDb(database, actions, SqlOutbox(table, database.sessionmaker))
    finally:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await database.dispose()


@pytest.fixture
async def gateway(app: FastAPI, as_user: Users) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as client:
        await create_project(client, as_user("bob"), "lake")
        yield client


def sink_for(gateway: httpx.AsyncClient, as_user: Users) -> HttpEventSink:
    async def token() -> str:
        return as_user("admin")["Authorization"].removeprefix("Bearer ")

    return HttpEventSink(str(gateway.base_url), token, http=gateway)


def upload_event(as_user: Users, name: str) -> Event:
    bob = f"{as_user.issuer.issuer}|{as_user.subject('bob')}"
    return Event.create(
        EventKind.UPLOAD,
        bob,
        service="datalake",
        project="lake",
        generated=[did_id("proj.lake", name)],
    )


async def act(svc: ServiceDb, event: Event, *, fail: bool = False) -> None:
    """The service's action and its event in one transaction (the pattern services follow)."""
    async with svc.database.sessionmaker.begin() as session:
        await session.execute(svc.actions.insert().values(did=event.generated[0]))
        await svc.outbox.add(session, event)
        if fail:
            raise RuntimeError("the action failed after writing")


async def graph_has(gateway: httpx.AsyncClient, as_user: Users, entity: str) -> bool:
    r = await gateway.get("/provenance", params={"entity": entity}, headers=as_user("bob"))
    return r.status_code == 200


async def reported(gateway: httpx.AsyncClient, as_user: Users) -> list[str]:
    audit = (await gateway.get("/projects/lake/audit", headers=as_user("bob"))).json()["items"]
    return [a["detail"]["event"] for a in audit if a["source"] == "datalake"]


async def test_event_commits_with_its_action_or_not_at_all(
    service_db: ServiceDb, as_user: Users
) -> None:
    kept, lost = upload_event(as_user, "kept"), upload_event(as_user, "lost")
    await act(service_db, kept)
    with pytest.raises(RuntimeError):
        await act(service_db, lost, fail=True)
    assert [i.event.id for i in await service_db.outbox.due(10)] == [kept.id]
    async with service_db.database.sessionmaker() as session:
        assert (await session.execute(select(service_db.actions.c.did))).scalars().all() == [
            did_id("proj.lake", "kept")
        ]


async def test_survives_a_crash_between_the_action_and_the_delivery(
    service_db: ServiceDb, gateway: httpx.AsyncClient, as_user: Users
) -> None:
    event = upload_event(as_user, "crash.root")
    await act(service_db, event)
    real = sink_for(gateway, as_user)

    class Stalled:
        """Hangs before sending, as a process does until it is killed."""

        started = asyncio.Event()

        async def deliver(self, events: Sequence[Event]) -> IngestResult:
            self.started.set()
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    stalled = Stalled()
    doomed = OutboxRelay(service_db.outbox, stalled, interval=0.01)
    doomed.start()
    await asyncio.wait_for(stalled.started.wait(), 5)
    await doomed.stop()  # killed before anything was sent
    assert not await graph_has(gateway, as_user, event.generated[0])
    assert await service_db.outbox.count() == 1

    fresh = OutboxRelay(service_db.outbox, real)
    assert await fresh.run_once() == 1
    assert await graph_has(gateway, as_user, event.generated[0])
    assert await service_db.outbox.count() == 0
    assert await reported(gateway, as_user) == [str(event.id)]


async def test_redelivery_after_a_crash_before_the_ack_is_deduplicated(
    service_db: ServiceDb, gateway: httpx.AsyncClient, as_user: Users
) -> None:
    events = [upload_event(as_user, f"f{i}") for i in range(3)]
    for e in events:
        await act(service_db, e)
    real = sink_for(gateway, as_user)
    results: list[IngestResult] = []

    class Recording:
        async def deliver(self, batch: Sequence[Event]) -> IngestResult:
            result = await real.deliver(batch)
            results.append(result)
            return result

    outbox = service_db.outbox

    class CrashesAfterSending(SqlOutbox):
        async def delivered(self, ids: Sequence[uuid.UUID]) -> None:
            raise asyncio.CancelledError  # killed right after the gateway stored them

    crashing = CrashesAfterSending(outbox.table, service_db.database.sessionmaker)
    with pytest.raises(asyncio.CancelledError):
        await OutboxRelay(crashing, Recording()).run_once()
    assert await outbox.count() == 3  # not acknowledged: still there

    assert await OutboxRelay(outbox, Recording()).run_once() == 3
    assert [r.model_dump() for r in results] == [
        {"accepted": 3, "duplicates": 0},
        {"accepted": 0, "duplicates": 3},
    ]
    assert await outbox.count() == 0
    assert sorted(await reported(gateway, as_user)) == sorted(str(e.id) for e in events)


async def test_gateway_down_means_retry_later(service_db: ServiceDb, as_user: Users) -> None:
    await act(service_db, upload_event(as_user, "later"))

    async def token() -> str:
        return "unused"

    async with httpx.AsyncClient() as http:
        down = HttpEventSink("http://127.0.0.1:9", token, http=http)
        relay = OutboxRelay(service_db.outbox, down, backoff_base=60)
        assert await relay.run_once() == 0
    assert await service_db.outbox.due(10) == []  # waiting for its backoff
    assert await service_db.outbox.count() == 1
    async with service_db.database.sessionmaker() as session:
        row = (await session.execute(select(service_db.outbox.table))).one()
    assert row.attempts == 1
    assert "unreachable" in row.last_error


async def test_an_unreadable_row_is_parked_not_blocking(
    service_db: ServiceDb, gateway: httpx.AsyncClient, as_user: Users
) -> None:
    good = upload_event(as_user, "good")
    await act(service_db, good)
    async with service_db.database.sessionmaker.begin() as session:
        await _insert_raw(session, service_db, "{not json")
    relay = OutboxRelay(service_db.outbox, sink_for(gateway, as_user))
    assert await relay.run_once() == 1
    assert await service_db.outbox.count("dead") == 1
    assert await service_db.outbox.count() == 0


async def _insert_raw(session: AsyncSession, svc: ServiceDb, payload: str) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    await session.execute(
        svc.outbox.table.insert().values(
            id=str(uuid.uuid4()),
            state="ready",
            created_at=now,
            next_attempt_at=now,
            attempts=0,
            payload=payload,
        )
    )


async def test_file_outbox_for_a_service_without_a_database(
    tmp_path: Path, gateway: httpx.AsyncClient, as_user: Users
) -> None:
    outbox = FileOutbox(tmp_path / "outbox.sqlite")
    done, failed, crashed, never = (
        upload_event(as_user, n) for n in ("done", "failed", "crashed", "never")
    )
    async with outbox.recording(done):
        assert await outbox.count("pending") == 1  # written before the action
    with pytest.raises(OSError, match="disk"):
        async with outbox.recording(failed):
            raise OSError("disk full")
    # a crash inside the action: the event stays pending
    await outbox.add(crashed, state="pending")
    await outbox.add(never, state="pending")
    assert await outbox.count() == 1
    assert await outbox.count("pending") == 2

    async def confirm(event: Event) -> bool | None:
        return event.id == crashed.id  # e.g. "does the DID exist in Rucio?"

    relay = OutboxRelay(
        FileOutbox(tmp_path / "outbox.sqlite"),  # a new process opens the same file
        sink_for(gateway, as_user),
        confirm=confirm,
        pending_grace=0,
    )
    assert await relay.run_once() == 2
    assert await outbox.count() == 0
    assert await outbox.count("pending") == 0
    assert await graph_has(gateway, as_user, done.generated[0])
    assert await graph_has(gateway, as_user, crashed.generated[0])
    assert not await graph_has(gateway, as_user, failed.generated[0])
    assert not await graph_has(gateway, as_user, never.generated[0])


async def test_file_outbox_under_concurrent_recordings(tmp_path: Path, as_user: Users) -> None:
    """Many recordings at once (group commit: they share transactions): every completed
    action's event is ready, a failed action's is gone, whatever the others did meanwhile."""
    outbox = FileOutbox(tmp_path / "outbox.sqlite")

    async def action(n: int) -> None:
        async with outbox.recording(upload_event(as_user, f"c{n}")):
            await asyncio.sleep(0)
            if n % 5 == 0:
                raise OSError(f"action {n} failed")

    outcomes = await asyncio.gather(*(action(n) for n in range(40)), return_exceptions=True)
    assert sum(isinstance(o, OSError) for o in outcomes) == 8
    assert await outbox.count() == 32
    assert await outbox.count("pending") == 0
    due = await outbox.due(100)
    assert len({item.event.id for item in due}) == 32
    await outbox.delivered([item.event.id for item in due])
    assert await FileOutbox(tmp_path / "outbox.sqlite").count() == 0  # committed for others


async def test_in_process_sink_and_relay_task(
    service_db: ServiceDb, gateway: httpx.AsyncClient, app: FastAPI, as_user: Users
) -> None:
    event = upload_event(as_user, "embedded")
    await act(service_db, event)
    relay = OutboxRelay(service_db.outbox, app.state.factory.event_sink, interval=0.05)
    relay.start()
    relay.wake()
    for _ in range(100):
        if await service_db.outbox.count() == 0:
            break
        await asyncio.sleep(0.05)
    await relay.stop()
    assert await graph_has(gateway, as_user, event.generated[0])
    async with service_db.database.engine.connect() as conn:
        assert (await conn.execute(text("select 1"))).scalar() == 1
