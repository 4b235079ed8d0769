"""Where events wait for delivery: the outbox table of a service with a database
(:class:`SqlOutbox`) or a SQLite file (:class:`FileOutbox`), both an :class:`OutboxStore`.

An event is written in the same transaction as the action (``SqlOutbox.add``), or *pending*
before an action that is not a transaction of this database and *ready* after it
(``recording``); the relay settles what a crash left pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vre_common.provenance.events import Event

log = structlog.get_logger("vre.provenance")


class OutboxItem(BaseModel):
    """One stored event waiting for delivery."""

    event: Event
    attempts: int = 0


class OutboxStore(Protocol):
    """What the relay needs of an outbox (SQL table or SQLite file)."""

    async def due(self, limit: int) -> list[OutboxItem]:
        """Ready events whose next attempt is due, oldest first."""
        ...

    async def delivered(self, ids: Sequence[uuid.UUID]) -> None:
        """Forget events the gateway acknowledged."""
        ...

    async def retry_later(self, ids: Sequence[uuid.UUID], error: str, delay: float) -> None:
        """Count a failed attempt and wait ``delay`` seconds before the next."""
        ...

    async def park(self, event_id: uuid.UUID, error: str) -> None:
        """Keep an event the gateway refuses as invalid out of the queue (state ``dead``)."""
        ...

    async def stale_pending(self, older_than: float) -> list[Event]:
        """Events recorded before an action whose outcome was never recorded (crash)."""
        ...

    async def settle(self, event_id: uuid.UUID, happened: bool) -> None:
        """Make a stale pending event ready (the action happened) or drop it (it did not)."""
        ...

    async def backlog(self) -> Backlog:
        """What waits: events to deliver, the oldest one's age, and parked (dead) events."""
        ...


class Backlog(BaseModel):
    """An outbox's backlog, exported as metrics after each relay pass."""

    waiting: int
    oldest_age_seconds: float
    dead: int


READY, PENDING, DEAD = "ready", "pending", "dead"


def outbox_table(metadata: MetaData, name: str = "provenance_outbox") -> Table:
    """Declare the outbox table in a service's metadata (its Alembic migration creates it)."""
    return Table(
        name,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("state", String(10), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_error", String(500), nullable=True),
        Column("payload", Text, nullable=False),
        Index(f"ix_{name}_due", "state", "next_attempt_at"),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _row(event: Event, state: str = READY) -> dict[str, Any]:
    now = _now()
    return {
        "id": str(event.id),
        "state": state,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
        "last_error": None,
        "payload": event.model_dump_json(),
    }


async def _parse(outbox: OutboxStore, rows: Sequence[Sequence[Any]]) -> list[OutboxItem]:
    """Rows as items; a row that no longer parses is parked rather than blocking the queue."""
    items = []
    for event_id, payload, attempts in rows:
        try:
            items.append(OutboxItem(event=Event.model_validate_json(payload), attempts=attempts))
        except ValidationError as exc:
            log.error("outbox_row_unreadable", event_id=str(event_id), error=str(exc)[:300])
            await outbox.park(uuid.UUID(str(event_id)), f"unreadable payload: {exc}")
    return items


class SqlOutbox:
    """The outbox table of a service with a database.

    ``add`` joins the caller's session (so the event commits with the action); the relay's
    methods run short transactions of their own through ``sessionmaker``. For an action that
    is not a transaction of this database (the datalake changing Rucio), ``recording`` writes
    the event *pending* before the action and *ready* after it, each committed at once, as
    :class:`FileOutbox` does; ``stale_pending``/``settle`` then resolve what a crash left.
    """

    def __init__(self, table: Table, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.table = table
        self._sessionmaker = sessionmaker

    async def add(self, session: AsyncSession, *events: Event) -> None:
        """Record events in the caller's transaction (committed with the action or not at all)."""
        if events:
            await session.execute(insert(self.table), [_row(e) for e in events])

    async def due(self, limit: int) -> list[OutboxItem]:
        t = self.table
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(t.c.id, t.c.payload, t.c.attempts)
                    .where(t.c.state == READY, t.c.next_attempt_at <= _now())
                    .order_by(t.c.created_at, t.c.id)
                    .limit(limit)
                )
            ).all()
        return await _parse(self, [(r[0], r[1], r[2]) for r in rows])

    async def delivered(self, ids: Sequence[uuid.UUID]) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(
                delete(self.table).where(self.table.c.id.in_([str(i) for i in ids]))
            )

    async def retry_later(self, ids: Sequence[uuid.UUID], error: str, delay: float) -> None:
        t = self.table
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(t)
                .where(t.c.id.in_([str(i) for i in ids]))
                .values(
                    attempts=t.c.attempts + 1,
                    last_error=error[:500],
                    next_attempt_at=_now() + timedelta(seconds=delay),
                )
            )

    async def park(self, event_id: uuid.UUID, error: str) -> None:
        t = self.table
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(t)
                .where(t.c.id == str(event_id))
                .values(state=DEAD, attempts=t.c.attempts + 1, last_error=error[:500])
            )

    async def record(self, *events: Event, state: str = READY) -> None:
        """Record events now, in a transaction of their own (an action already done)."""
        if events:
            async with self._sessionmaker.begin() as session:
                await session.execute(insert(self.table), [_row(e, state) for e in events])

    @asynccontextmanager
    async def recording(self, event: Event) -> AsyncIterator[Event]:
        """Write ``event`` pending, run the action in the block, then mark it ready.

        If the block raises, the event is dropped; if the process dies inside the block, the
        event stays pending and the relay's ``confirm`` decides.
        """
        t = self.table
        await self.record(event, state=PENDING)
        try:
            yield event
        except BaseException:
            async with self._sessionmaker.begin() as session:
                await session.execute(delete(t).where(t.c.id == str(event.id)))
            raise
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(t).where(t.c.id == str(event.id)).values(state=READY, next_attempt_at=_now())
            )

    async def stale_pending(self, older_than: float) -> list[Event]:
        t = self.table
        cutoff = _now() - timedelta(seconds=older_than)
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(t.c.payload)
                    .where(t.c.state == PENDING, t.c.created_at <= cutoff)
                    .order_by(t.c.created_at)
                )
            ).all()
        return [Event.model_validate_json(payload) for (payload,) in rows]

    async def settle(self, event_id: uuid.UUID, happened: bool) -> None:
        t = self.table
        mine = (t.c.id == str(event_id)) & (t.c.state == PENDING)
        async with self._sessionmaker.begin() as session:
            if happened:
                await session.execute(
                    update(t).where(mine).values(state=READY, next_attempt_at=_now())
                )
            else:
                await session.execute(delete(t).where(mine))

    async def backlog(self) -> Backlog:
        t = self.table
        async with self._sessionmaker() as session:
            waiting, oldest = (
                await session.execute(
                    select(func.count(), func.min(t.c.created_at)).where(t.c.state != DEAD)
                )
            ).one()
            dead = (
                await session.execute(select(func.count()).where(t.c.state == DEAD))
            ).scalar_one()
        age = (_now() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        return Backlog(waiting=int(waiting), oldest_age_seconds=max(age, 0.0), dead=int(dead))

    async def count(self, state: str = READY) -> int:
        """Events in one state (for readiness and tests)."""
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(select(self.table.c.id).where(self.table.c.state == state))
            ).all()
        return len(rows)


_FILE_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
"""


def _read_outcome(outcome: asyncio.Future[Any]) -> None:
    """Mark the outcome of a call whose caller went away as read (no warning at exit)."""
    if not outcome.cancelled():
        outcome.exception()


class FileOutbox:
    """An outbox in a local SQLite file, for a service without a database (the datalake).

    Every write is committed (WAL, synchronous=FULL) before the call returns. SQLite calls run
    in a worker thread, on one connection, so the event loop never waits on the disk. Calls
    made while a transaction is under way go together in the next one (group commit: one
    disk flush for all of them; each call in its own savepoint, so that one failing fails
    only itself): concurrent uploads do not queue for the disk one by one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None
        self._queue: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        with contextlib.closing(self._connect()) as db:
            db.executescript(_FILE_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    @staticmethod
    def _run(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return db.execute(sql, params).fetchall()

    @staticmethod
    def _many(db: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        db.executemany(sql, rows)

    def _transaction(
        self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
    ) -> list[tuple[bool, Any]]:
        """Run ``calls`` in one transaction (worker thread): each call's result or error."""
        if self._db is None:
            self._db = self._connect()
        db = self._db
        outcomes: list[tuple[bool, Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for fn, args in calls:
                db.execute("SAVEPOINT call")
                try:
                    value = fn(db, *args)
                except Exception as exc:  # this call's own error (a constraint, a bad value)
                    db.execute("ROLLBACK TO call")
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, value))
                db.execute("RELEASE call")
            db.execute("COMMIT")
        except Exception as exc:  # nothing of this transaction holds
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            db.close()
            self._db = None  # a fresh connection next time
            return [(False, exc)] * len(calls)
        return outcomes

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(connection, *args)`` in the next transaction; its result."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Any] = loop.create_future()
        outcome.add_done_callback(_read_outcome)
        self._queue.append((fn, args, outcome))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        # A caller that goes away does not take its call out of a transaction under way.
        return await asyncio.shield(outcome)

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                outcomes = await asyncio.to_thread(
                    self._transaction, [(fn, args) for fn, args, _ in batch]
                )
            except BaseException:
                for _, _, outcome in batch + self._queue:
                    if not outcome.done():
                        outcome.cancel()
                self._queue = []
                raise
            for (_, _, outcome), (ok, value) in zip(batch, outcomes, strict=True):
                if outcome.done():
                    continue
                if ok:
                    outcome.set_result(value)
                else:
                    outcome.set_exception(value)

    async def record(self, *events: Event, state: str = READY) -> None:
        """Record events now (as :meth:`SqlOutbox.record`)."""
        await self.add(*events, state=state)

    async def add(self, *events: Event, state: str = READY) -> None:
        """Record events now (for an action that already happened)."""
        now = _now().timestamp()
        rows = [(str(e.id), state, now, now, e.model_dump_json()) for e in events]
        await self._call(
            self._many,
            "INSERT OR IGNORE INTO outbox (id, state, created_at, next_attempt_at, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    @asynccontextmanager
    async def recording(self, event: Event) -> AsyncIterator[Event]:
        """Write ``event`` pending, run the action in the block, then mark it ready.

        If the block raises, the event is dropped; if the process dies inside the block, the
        event stays pending and the relay's ``confirm`` decides.
        """
        await self.add(event, state=PENDING)
        try:
            yield event
        except BaseException:
            await self._call(self._run, "DELETE FROM outbox WHERE id = ?", (str(event.id),))
            raise
        await self._call(
            self._run,
            "UPDATE outbox SET state = ?, next_attempt_at = ? WHERE id = ?",
            (READY, _now().timestamp(), str(event.id)),
        )

    async def due(self, limit: int) -> list[OutboxItem]:
        rows = await self._call(
            self._run,
            "SELECT id, payload, attempts FROM outbox WHERE state = ? AND next_attempt_at <= ? "
            "ORDER BY created_at, id LIMIT ?",
            (READY, _now().timestamp(), limit),
        )
        return await _parse(self, rows)

    async def delivered(self, ids: Sequence[uuid.UUID]) -> None:
        await self._call(self._many, "DELETE FROM outbox WHERE id = ?", [(str(i),) for i in ids])

    async def retry_later(self, ids: Sequence[uuid.UUID], error: str, delay: float) -> None:
        when = _now().timestamp() + delay
        await self._call(
            self._many,
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE id = ?",
            [(error[:500], when, str(i)) for i in ids],
        )

    async def park(self, event_id: uuid.UUID, error: str) -> None:
        await self._call(
            self._run,
            "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
            (DEAD, error[:500], str(event_id)),
        )

    async def stale_pending(self, older_than: float) -> list[Event]:
        rows = await self._call(
            self._run,
            "SELECT payload FROM outbox WHERE state = ? AND created_at <= ? ORDER BY created_at",
            (PENDING, _now().timestamp() - older_than),
        )
        return [Event.model_validate_json(p) for (p,) in rows]

    async def settle(self, event_id: uuid.UUID, happened: bool) -> None:
        if happened:
            await self._call(
                self._run,
                "UPDATE outbox SET state = ?, next_attempt_at = ? WHERE id = ? AND state = ?",
                (READY, _now().timestamp(), str(event_id), PENDING),
            )
        else:
            await self._call(
                self._run, "DELETE FROM outbox WHERE id = ? AND state = ?", (str(event_id), PENDING)
            )

    async def backlog(self) -> Backlog:
        rows = await self._call(
            self._run,
            "SELECT sum(state != ?), min(CASE WHEN state != ? THEN created_at END), "
            "sum(state = ?) FROM outbox",
            (DEAD, DEAD, DEAD),
        )
        waiting, oldest, dead = rows[0]
        age = _now().timestamp() - oldest if oldest is not None else 0.0
        return Backlog(
            waiting=int(waiting or 0), oldest_age_seconds=max(age, 0.0), dead=int(dead or 0)
        )

    async def count(self, state: str = READY) -> int:
        """Events in one state (for readiness and tests)."""
        rows = await self._call(self._run, "SELECT count(*) FROM outbox WHERE state = ?", (state,))
        return int(rows[0][0])


# ----------------------------------------------------------------------------- delivery
