"""SqlOutbox for actions outside the database (the datalake changing Rucio): pending before
the action, ready after it, dropped when it fails, settled after a crash — as FileOutbox, but
in a table that outlives the pod (the deployments' datalake keeps its outbox there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from vre_common.db import Database
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id
from vre_common.provenance.outbox import DEAD, PENDING, READY, SqlOutbox, outbox_table
from vre_common.settings import DatabaseSettings


def event(name: str) -> Event:
    return Event.create(
        EventKind.UPLOAD, "iss|alice", service="datalake", generated=[did_id("user.a", name)]
    )


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[SqlOutbox]:
    metadata = MetaData()
    table = outbox_table(metadata)
    database = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/outbox.db"))
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield SqlOutbox(table, database.sessionmaker)
    await database.dispose()


async def test_an_action_that_succeeds_leaves_a_ready_event(outbox: SqlOutbox) -> None:
    done = event("done")
    async with outbox.recording(done):
        assert await outbox.count(PENDING) == 1  # committed before the action
    assert (await outbox.count(PENDING), await outbox.count(READY)) == (0, 1)
    assert [item.event.id for item in await outbox.due(10)] == [done.id]


async def test_an_action_that_fails_leaves_nothing(outbox: SqlOutbox) -> None:
    with pytest.raises(RuntimeError):
        async with outbox.recording(event("failed")):
            raise RuntimeError("Rucio refused")
    assert await outbox.count(PENDING) + await outbox.count(READY) == 0


async def test_a_crash_leaves_a_pending_event_that_is_settled(outbox: SqlOutbox) -> None:
    happened, did_not = event("happened"), event("did-not")
    await outbox.record(happened, did_not, state=PENDING)  # the process died mid-action
    assert await outbox.stale_pending(older_than=3600) == []  # too young to judge
    stale = await outbox.stale_pending(older_than=0)
    assert {e.id for e in stale} == {happened.id, did_not.id}
    await outbox.settle(happened.id, True)
    await outbox.settle(did_not.id, False)
    assert [item.event.id for item in await outbox.due(10)] == [happened.id]
    assert await outbox.count(PENDING) == 0
    backlog = await outbox.backlog()
    assert (backlog.waiting, backlog.dead) == (1, 0)
    assert backlog.oldest_age_seconds >= 0
    await outbox.park(happened.id, "refused")
    assert await outbox.count(DEAD) == 1
    assert (await outbox.backlog()).dead == 1


async def test_the_relay_looks_for_crash_left_events_once_per_interval(
    outbox: SqlOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Woken for every upload, the background relay delivers each time, but asks the outbox
    about pending events a crash left (and exports its backlog) only once per interval."""
    import asyncio

    from vre_common.provenance.relay import OutboxRelay

    delivered: list[str] = []
    looked = 0
    stale_pending = outbox.stale_pending

    async def counted(older_than: float) -> list[Event]:
        nonlocal looked
        looked += 1
        return await stale_pending(older_than)

    class Sink:
        async def deliver(self, batch: list[Event]) -> None:
            delivered.extend(e.generated[0] for e in batch)

    async def confirm(_: Event) -> bool:
        return True

    monkeypatch.setattr(outbox, "stale_pending", counted)
    relay = OutboxRelay(outbox, Sink(), interval=30.0, confirm=confirm)  # type: ignore[arg-type]
    relay.start()
    try:
        for name in ("a", "b", "c"):
            await outbox.record(event(name))
            relay.wake()
            for _ in range(100):
                if did_id("user.a", name) in delivered:
                    break
                await asyncio.sleep(0.02)
    finally:
        await relay.stop()
    assert delivered == [did_id("user.a", n) for n in ("a", "b", "c")]
    assert looked == 1  # the first pass; the three wakes within the interval did not look
