"""The datalake's provenance events (upload, attach), recorded so that a crash loses none.

Each event goes to the outbox — a :class:`~vre_common.provenance.outbox.FileOutbox`
(embedded mode) or the table of the datalake's own database
(:class:`~vre_common.provenance.outbox.SqlOutbox`, deployments) — *pending* just before
Rucio is changed and *ready* right after; an :class:`OutboxRelay` delivers ready events to
the gateway (in-process in the embedded mode, ``POST /provenance/events`` as the service's
IAM client in the distributed one). An event a
crash left pending is settled by :meth:`ProvenanceRecorder.confirm`, which asks Rucio
whether the action happened (the file has a replica; the DIDs are in the collection).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import structlog

from vre_common.db import Database
from vre_common.errors import NotFoundError
from vre_common.provenance.events import AttributeValue, Event, EventKind
from vre_common.provenance.ids import did_id
from vre_common.provenance.outbox import PENDING, FileOutbox, SqlOutbox
from vre_common.provenance.relay import OutboxRelay
from vre_common.provenance.sink import EventSink, HttpEventSink
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.config import ProvenanceSettings
from vre_datalake.models import DidRef
from vre_datalake.outbox import PROVENANCE_OUTBOX

log = structlog.get_logger("vre.datalake.provenance")
SERVICE = "datalake"
_FINAL_FLUSH_SECONDS = 5.0


def did_of(entity: str) -> DidRef | None:
    """The DID behind a ``did:<scope>:<name>`` id."""
    kind, _, rest = entity.partition(":")
    scope, sep, name = rest.partition(":")
    return DidRef(scope=scope, name=name) if kind == "did" and sep else None


class ProvenanceRecorder:
    """Records events in the outbox and runs the relay (inactive until :meth:`start`)."""

    def __init__(
        self,
        *,
        backend: DatalakeBackend,
        settings: ProvenanceSettings,
        database: Database | None = None,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._database = database
        self.outbox: FileOutbox | SqlOutbox | None = None
        self.relay: OutboxRelay | None = None
        self._sink: EventSink | None = None
        self._temp_dir: Path | None = None
        self._marking: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        """True when events are recorded."""
        return self.outbox is not None

    async def start(self, sink: EventSink | None) -> None:
        """Open the outbox and start relaying to ``sink`` (no sink: record nothing)."""
        if not self._settings.enabled or sink is None:
            log.warning("provenance_not_recorded", reason="disabled" if sink else "no sink")
            return
        if self._settings.outbox == "database":
            if self._database is None:
                raise RuntimeError("provenance.outbox=database needs the datalake's database")
            self.outbox = SqlOutbox(PROVENANCE_OUTBOX, self._database.sessionmaker)
        else:
            path = self._settings.outbox_path
            if path is None:
                self._temp_dir = Path(tempfile.mkdtemp(prefix="vre-datalake-outbox-"))
                path = self._temp_dir / "outbox.sqlite"
                log.warning("provenance_outbox_temporary", path=str(path))
            self.outbox = await asyncio.to_thread(FileOutbox, path)
        self._sink = sink
        self.relay = OutboxRelay(
            self.outbox,
            sink,
            interval=self._settings.relay_interval_seconds,
            confirm=self.confirm,
            pending_grace=self._settings.pending_grace_seconds,
            name=SERVICE,
        )
        self.relay.start()

    async def stop(self) -> None:
        """Stop the relay after a last, short delivery attempt; undelivered events stay."""
        if self._marking:
            await asyncio.wait(set(self._marking), timeout=_FINAL_FLUSH_SECONDS)
        if self.relay is not None:
            await self.relay.stop()
            with contextlib.suppress(Exception), anyio.move_on_after(_FINAL_FLUSH_SECONDS):
                await self.relay.run_once()
        if isinstance(self._sink, HttpEventSink):
            await self._sink.aclose()
        self.outbox = self.relay = self._sink = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def event(
        self,
        kind: EventKind,
        actor: Actor,
        *,
        used: Sequence[str] = (),
        generated: Sequence[str] = (),
        attributes: dict[str, AttributeValue] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Event:
        """A new event by the caller behind ``actor`` (with the project it acted in)."""
        return Event.create(
            kind,
            actor.principal or actor.user_key,
            service=SERVICE,
            project=actor.project,
            used=used,
            generated=generated,
            attributes=attributes,
            labels=labels,
        )

    @asynccontextmanager
    async def recording(self, event: Event) -> AsyncIterator[None]:
        """Pending before the block, ready after it (dropped if it raises); then relay soon.

        The block is the change to Rucio. If the event cannot be recorded, nothing is
        changed (the error is the request's). Once the block has succeeded, the event is
        marked ready in the background (:meth:`marked` waits for it): a failure to do so is
        only logged, the action happened and the request succeeds, and the relay's
        :meth:`confirm` settles the pending event later — as after a crash.
        """
        outbox, relay = self.outbox, self.relay
        if outbox is None or relay is None:
            yield
            return
        await outbox.record(event, state=PENDING)
        try:
            yield
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await outbox.settle(event.id, happened=False)
            raise
        # The answer does not wait for the disk: what a crash before this write leaves
        # pending, confirm() settles.
        marking = asyncio.get_running_loop().create_task(self._mark_ready(event))
        self._marking.add(marking)
        marking.add_done_callback(self._marking.discard)

    async def _mark_ready(self, event: Event) -> None:
        outbox, relay = self.outbox, self.relay
        if outbox is None or relay is None:
            return
        try:
            await outbox.settle(event.id, happened=True)
        except Exception as exc:  # the action happened: confirm() decides later
            log.error("provenance_event_left_pending", event_id=str(event.id), error=repr(exc))
        relay.wake()

    async def marked(self) -> None:
        """Wait until the events of the actions done so far are marked ready."""
        while self._marking:
            await asyncio.wait(set(self._marking))

    async def confirm(self, event: Event) -> bool | None:
        """Did the action of an event a crash left pending happen? (None: cannot tell.)"""
        actor = self._backend.service_actor()
        if event.kind is EventKind.UPLOAD:
            for entity in event.generated:
                did = did_of(entity)
                if did is None or not await self._has_replica(actor, did):
                    return False
            return True
        if event.kind is EventKind.ATTACH and event.generated:
            parent = did_of(event.generated[0])
            if parent is None:
                return False
            try:
                content = {
                    did_id(d.scope, d.name)
                    async for d in self._backend.iter_content(actor, parent.scope, parent.name)
                }
            except NotFoundError:
                return False
            return all(entity in content for entity in event.used)
        return None

    async def _has_replica(self, actor: Actor, did: DidRef) -> bool:
        try:
            async for item in self._backend.iter_replicas(actor, [did], all_states=True):
                if any(r.state == "AVAILABLE" for r in item.replicas):
                    return True
        except NotFoundError:
            return False
        return False
