"""Provenance events and the outbox that delivers them to the gateway at least once.

Every service reports what it did as an :class:`Event` (upload, attach, run started/finished,
import from a DOI, a query at a VO service, publish to a DOI, delete): an *activity* that
*used* some entities and *generated* others. Entity ids are ``did:<scope>:<name>``,
``run:<id>``, ``doi:10.…`` (:func:`did_id`, :func:`run_id`, :func:`doi_id`).

An event must never be lost when a service crashes, so it is not sent from the request:

- a service **with a database** writes it to its outbox table in the same transaction as the
  action (:class:`SqlOutbox` ``.add(session, event)``): both commit or neither does;
- the **datalake** (no database) records it in a small SQLite file (:class:`FileOutbox`):
  ``async with outbox.recording(event): <action>`` writes it *pending* before the action and
  *ready* after; a pending row left by a crash is settled by the relay's ``confirm`` callback
  (did the action happen? e.g. does the DID exist?);
- an :class:`OutboxRelay` task posts ready events in batches to an :class:`EventSink`
  (:class:`HttpEventSink` → ``POST {gateway}/provenance/events``, or the gateway's in-process
  sink in embedded mode) and deletes them only after the gateway acknowledged them. A relay
  killed between sending and deleting sends them again: the gateway deduplicates by event id.

Transient failures (network, 5xx, 401/403/429) are retried with capped exponential backoff for
ever; an event the gateway refuses as invalid (422) is parked as ``dead`` (logged, kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol, Self

import anyio
import httpx
import structlog
from prometheus_client import Gauge
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
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

from vre_common.auth import Principal
from vre_common.client_credentials import ClientCredentialsToken
from vre_common.clients.datalake import raise_for_problem
from vre_common.db import Database
from vre_common.errors import InvalidInputError, VreError
from vre_common.http import backend_call, make_http_client
from vre_common.logging import current_request_id
from vre_common.settings import HttpClientSettings, ProvenanceSettings

log = structlog.get_logger("vre.provenance")

ENTITY_ID_MAX = 600
_ENTITY_ID = re.compile(r"^[a-z][a-z0-9-]*:\S+$")
ENTITY_ID_PATTERN = r"^[a-z][a-z0-9-]*:\S+$"
"""A provenance id as the OpenAPI document states it (``_ENTITY_ID``; at most ENTITY_ID_MAX)."""
ENTITY_QUERY_PATTERN = r"^(?!did:[^:]*$)[a-z][a-z0-9-]*:\S+$"
"""An entity to walk from (:func:`check_entity_id`: a DID id has a scope and a name)."""
ProvenanceId = Annotated[
    str, Field(max_length=ENTITY_ID_MAX, json_schema_extra={"pattern": ENTITY_ID_PATTERN})
]


def did_id(scope: str, name: str) -> str:
    """The provenance id of a Data Lake DID."""
    return f"did:{scope}:{name}"


def run_id(run: str) -> str:
    """The provenance id of a workflow run."""
    return f"run:{run}"


def doi_id(doi: str) -> str:
    """The provenance id of a DOI (``10.5281/zenodo.1`` or ``https://doi.org/10.…``)."""
    doi = doi.removeprefix("https://doi.org/").removeprefix("doi:")
    return f"doi:{doi.lower()}"


def id_type(entity: str) -> str:
    """The prefix of an id: ``did``, ``run``, ``doi`` …"""
    return entity.split(":", 1)[0]


def check_entity_id(entity: str) -> str:
    """Return ``entity`` if it is a well-formed provenance id, else raise 422."""
    if len(entity) > ENTITY_ID_MAX or not _ENTITY_ID.match(entity):
        raise InvalidInputError(
            f"{entity[:80]!r} is not a provenance id (did:<scope>:<name>, run:<id>, doi:10.…)",
            errors=[{"loc": ["entity"], "msg": "malformed provenance id", "type": "value_error"}],
        )
    if entity.startswith("did:") and entity.count(":") < 2:
        raise InvalidInputError("a DID id is did:<scope>:<name>")
    return entity


class EventKind(StrEnum):
    """What happened."""

    UPLOAD = "upload"  # generated: the uploaded file DIDs
    ATTACH = "attach"  # used: the attached DIDs; generated: the dataset/container
    RUN_STARTED = "run.started"  # activity run:<id>; used: the input DIDs
    RUN_FINISHED = "run.finished"  # activity run:<id>; generated: the output DIDs
    IMPORT = "import"  # used: doi:…; generated: the imported DIDs
    QUERY = "query"  # used: the VO service (ivo://… or its URL), uploaded DIDs; generated: result
    PUBLISH = "publish"  # used: the published DIDs (or run:<id>); generated: doi:…
    DELETE = "delete"  # used: the deleted DIDs (they stay in the graph, marked invalidated)
    REPRODUCTION = "reproduction"  # used: doi:… reproduced; generated: the re-run's outputs


_RUN_KINDS = (EventKind.RUN_STARTED, EventKind.RUN_FINISHED)
AttributeValue = str | int | float | bool | None


class Event(BaseModel):
    """One thing a service did, as recorded in the provenance graph and the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(description="Unique per event: the gateway deduplicates by it.")
    kind: EventKind
    service: str = Field(max_length=32, examples=["datalake"])
    actor: str = Field(max_length=512, description="The acting user's key: 'iss|sub'.")
    actor_name: str | None = Field(default=None, max_length=255)
    project: str | None = Field(
        default=None, max_length=32, description="The project's slug (DIDs map by scope)."
    )
    time: AwareDatetime
    request_id: str | None = Field(default=None, max_length=128)
    activity: str | None = Field(
        default=None,
        max_length=ENTITY_ID_MAX,
        description="The activity's id; run events must give run:<id>; default <kind>:<id>.",
    )
    used: list[ProvenanceId] = Field(default_factory=list, max_length=10_000)
    generated: list[ProvenanceId] = Field(default_factory=list, max_length=10_000)
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Facts about the activity (status, workflow …)."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Human titles of entities, by id."
    )

    @field_validator("used", "generated")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for entity in value:
            if len(entity) > ENTITY_ID_MAX or not _ENTITY_ID.match(entity):
                raise ValueError(f"{entity[:80]!r} is not a provenance id")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _activity(self) -> Event:
        if self.kind in _RUN_KINDS and not (self.activity or "").startswith("run:"):
            raise ValueError(f"a {self.kind.value} event names its activity run:<id>")
        if self.activity is not None and not _ENTITY_ID.match(self.activity):
            raise ValueError("activity is not a provenance id")
        return self

    @property
    def activity_id(self) -> str:
        """The activity node this event describes."""
        return self.activity or f"{self.kind.value}:{self.id}"

    @classmethod
    def create(
        cls,
        kind: EventKind,
        actor: Principal | str,
        *,
        service: str,
        project: str | None = None,
        activity: str | None = None,
        used: Sequence[str] = (),
        generated: Sequence[str] = (),
        attributes: dict[str, AttributeValue] | None = None,
        labels: dict[str, str] | None = None,
        time: datetime | None = None,
    ) -> Event:
        """A new event now, with a fresh id and the current request id."""
        return cls(
            id=uuid.uuid4(),
            kind=kind,
            service=service,
            actor=actor.key if isinstance(actor, Principal) else actor,
            actor_name=actor.username if isinstance(actor, Principal) else None,
            project=project,
            time=time or datetime.now(UTC),
            request_id=current_request_id(),
            activity=activity,
            used=list(used),
            generated=list(generated),
            attributes=attributes or {},
            labels=labels or {},
        )


class EventBatch(BaseModel):
    """The body of ``POST /provenance/events``."""

    events: list[Event] = Field(max_length=1000)


class IngestResult(BaseModel):
    """What the gateway did with a batch: new events and already-known ones."""

    accepted: int
    duplicates: int


# ----------------------------------------------------------------------------- outbox storage


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


class FileOutbox:
    """An outbox in a local SQLite file, for a service without a database (the datalake).

    Every write is committed (WAL, synchronous=FULL) before the call returns. SQLite calls run
    in a worker thread so the event loop never waits on the disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = asyncio.Lock()
        with contextlib.closing(self._connect()) as db:
            db.executescript(_FILE_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with contextlib.closing(self._connect()) as db:
            return db.execute(sql, params).fetchall()

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with contextlib.closing(self._connect()) as db:
            db.execute("BEGIN")
            db.executemany(sql, rows)
            db.execute("COMMIT")

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

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


class RejectedEventsError(VreError):
    """The gateway refused a batch as invalid (422): retrying the same bytes cannot help."""

    status = 422
    slug = "invalid-input"
    title = "Invalid provenance events"


class EventSink(Protocol):
    """Where the relay delivers events (the gateway, over HTTP or in-process)."""

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        """Store events (idempotent by id); raise on failure, RejectedEventsError if invalid."""
        ...


TokenProvider = Callable[[], Awaitable[str]]


class HttpEventSink:
    """``POST {gateway}/provenance/events`` with a service token from ``token_provider``."""

    def __init__(
        self,
        gateway_url: str,
        token_provider: TokenProvider,
        *,
        http: httpx.AsyncClient | None = None,
        settings: HttpClientSettings | None = None,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> None:
        self.url = gateway_url.rstrip("/") + "/provenance/events"
        self._token = token_provider
        self._on_unauthorized = on_unauthorized
        self._owns_http = http is None
        self._http = http or make_http_client(settings or HttpClientSettings(read_timeout=30.0))

    async def aclose(self) -> None:
        """Close the HTTP client if this sink created it."""
        if self._owns_http:
            await self._http.aclose()

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        body = EventBatch(events=list(events)).model_dump(mode="json")
        headers = {"Authorization": f"Bearer {await self._token()}"}
        async with backend_call("gateway", "provenance_events"):
            response = await self._http.post(self.url, json=body, headers=headers)
        if response.status_code == 422:
            raise RejectedEventsError(response.text[:300])
        if response.status_code == 401 and self._on_unauthorized is not None:
            self._on_unauthorized()  # a fresh token for the next attempt
        if not response.is_success:
            await raise_for_problem(response, "provenance_events")
        return IngestResult.model_validate(response.json())


def http_event_sink(gateway_url: str | None, settings: ProvenanceSettings) -> EventSink | None:
    """The distributed mode's sink: the gateway over HTTP, as the service's IAM client.

    The token comes from ``settings.client`` (client credentials, renewed before it expires
    and after a 401), else from ``service_token_file`` (read at every delivery, so a rotated
    token is picked up) or ``service_token``. None without a gateway URL or any of these
    (nothing is then recorded).
    """
    if gateway_url is None:
        return None
    if settings.client is not None:
        tokens = ClientCredentialsToken(settings.client)
        return HttpEventSink(gateway_url, tokens, on_unauthorized=tokens.invalidate)
    if settings.service_token is None and settings.service_token_file is None:
        return None

    async def token() -> str:
        if settings.service_token_file is not None:
            return (await anyio.Path(settings.service_token_file).read_text()).strip()
        assert settings.service_token is not None
        return settings.service_token.get_secret_value()

    return HttpEventSink(gateway_url, token)


Confirm = Callable[[Event], Awaitable[bool | None]]


OUTBOX_WAITING = Gauge(
    "vre_outbox_waiting_events", "Provenance events waiting in an outbox for delivery", ["outbox"]
)
OUTBOX_OLDEST = Gauge(
    "vre_outbox_oldest_event_age_seconds",
    "Age of the oldest event waiting in an outbox (0 when empty)",
    ["outbox"],
)
OUTBOX_DEAD = Gauge(
    "vre_outbox_dead_events", "Events the gateway refused as invalid, parked", ["outbox"]
)


class OutboxRelay:
    """Moves events from an outbox to a sink: at least once, in order of recording.

    ``run_once()`` does one pass (tests call it); ``start()``/``stop()`` run passes every
    ``interval`` seconds in a task (a service's lifespan); ``wake()`` starts a pass now.
    """

    def __init__(
        self,
        outbox: OutboxStore,
        sink: EventSink,
        *,
        batch_size: int = 100,
        interval: float = 2.0,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        confirm: Confirm | None = None,
        pending_grace: float = 60.0,
        name: str = "provenance",
    ) -> None:
        self.outbox = outbox
        self.sink = sink
        self.batch_size = batch_size
        self.interval = interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.confirm = confirm
        self.pending_grace = pending_grace
        self.name = name
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def _delay(self, attempts: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2 ** min(attempts, 20)))

    async def settle_pending(self) -> None:
        """Ask ``confirm`` about events left pending by a crash (if a callback is set)."""
        if self.confirm is None:
            return
        for event in await self.outbox.stale_pending(self.pending_grace):
            try:
                happened = await self.confirm(event)
            except Exception as exc:  # undecidable now; ask again next pass
                log.warning("outbox_confirm_failed", event_id=str(event.id), error=repr(exc))
                continue
            if happened is not None:
                await self.outbox.settle(event.id, happened)

    async def run_once(self) -> int:
        """Deliver every due event (batch by batch); return how many were acknowledged."""
        await self.settle_pending()
        sent = 0
        while True:
            items = await self.outbox.due(self.batch_size)
            if not items:
                return sent
            ok = await self._send(items)
            sent += ok
            if ok < len(items):
                return sent  # the rest waits for its backoff

    async def _send(self, items: list[OutboxItem]) -> int:
        events = [i.event for i in items]
        try:
            await self.sink.deliver(events)
        except RejectedEventsError as exc:
            if len(items) == 1:
                log.error("outbox_event_rejected", event_id=str(events[0].id), detail=exc.detail)
                await self.outbox.park(events[0].id, exc.detail)
                return 0
            delivered = 0
            for item in items:  # isolate the invalid one(s)
                delivered += await self._send([item])
            return delivered
        except (VreError, httpx.HTTPError, OSError) as exc:
            detail = getattr(exc, "detail", None) or repr(exc)
            attempts = max(i.attempts for i in items)
            log.warning("outbox_delivery_failed", events=len(items), error=str(detail)[:200])
            await self.outbox.retry_later(
                [e.id for e in events], str(detail), self._delay(attempts)
            )
            return 0
        await self.outbox.delivered([e.id for e in events])
        return len(events)

    async def export_backlog(self) -> Backlog:
        """Publish the outbox's backlog as metrics (alerts: events not reaching the gateway)."""
        backlog = await self.outbox.backlog()
        OUTBOX_WAITING.labels(self.name).set(backlog.waiting)
        OUTBOX_OLDEST.labels(self.name).set(backlog.oldest_age_seconds)
        OUTBOX_DEAD.labels(self.name).set(backlog.dead)
        return backlog

    def wake(self) -> None:
        """Run a pass now rather than at the next interval."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
                await self.export_backlog()
            except Exception as exc:  # the relay must survive anything; the rows stay
                log.exception("outbox_relay_pass_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()

    def start(self) -> None:
        """Start the background task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="provenance-outbox-relay")

    async def stop(self) -> None:
        """Stop the background task; undelivered events stay in the outbox."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


__all__ = [
    "Backlog",
    "Event",
    "EventBatch",
    "EventKind",
    "EventSink",
    "FileOutbox",
    "HttpEventSink",
    "IngestResult",
    "OutboxItem",
    "OutboxRelay",
    "OutboxStore",
    "RejectedEventsError",
    "SqlOutbox",
    "check_entity_id",
    "did_id",
    "doi_id",
    "http_event_sink",
    "id_type",
    "outbox_table",
    "run_id",
]


class ServiceEvents:
    """A service's event recorder: events join the service's own transactions (SQL outbox)
    and a relay delivers them to the gateway. Inactive, recording nothing, until started
    with a sink (the gateway in-process, or HTTP with a service token)."""

    FINAL_FLUSH_SECONDS = 3.0

    def __init__(
        self,
        *,
        table: Table,
        sessionmaker: async_sessionmaker[AsyncSession],
        enabled: bool = True,
        relay_interval_seconds: float = 2.0,
    ) -> None:
        self.outbox = SqlOutbox(table, sessionmaker)
        self.relay: OutboxRelay | None = None
        self._enabled = enabled
        self._interval = relay_interval_seconds
        self._sink: EventSink | None = None

    @classmethod
    def for_service(cls, table: Table, *, db: Database, settings: ProvenanceSettings) -> Self:
        """The recorder of a service: its outbox ``table`` in ``db``, as ``settings`` say."""
        return cls(
            table=table,
            sessionmaker=db.sessionmaker,
            enabled=settings.enabled,
            relay_interval_seconds=settings.relay_interval_seconds,
        )

    @property
    def active(self) -> bool:
        """True when events are recorded (a sink exists)."""
        return self.relay is not None

    def start(self, sink: EventSink | None) -> None:
        """Start relaying to ``sink`` (None, or disabled: record nothing)."""
        if not self._enabled or sink is None:
            log.warning("provenance_not_recorded", reason="disabled" if sink else "no sink")
            return
        self._sink = sink
        self.relay = OutboxRelay(self.outbox, sink, interval=self._interval)
        self.relay.start()

    async def stop(self) -> None:
        """Stop the relay after a last, short delivery attempt; undelivered events stay."""
        if self.relay is not None:
            await self.relay.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.run_once(), self.FINAL_FLUSH_SECONDS)
        if isinstance(self._sink, HttpEventSink):
            await self._sink.aclose()
        self.relay = self._sink = None

    async def add(self, session: AsyncSession, event: Event) -> None:
        """Add ``event`` to the session's transaction (nothing when inactive)."""
        if self.active:
            await self.outbox.add(session, event)

    def wake(self) -> None:
        """Deliver soon (call once the transaction that recorded events committed)."""
        if self.relay is not None:
            self.relay.wake()
