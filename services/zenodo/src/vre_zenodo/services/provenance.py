"""ZenodoEvents: provenance of imports (``import``) and publications (``publish``).

Each event is written to the ``provenance_outbox`` table in the same transaction as the
change it describes (the import's final state, the deposition's publication), so both commit
or neither does; an :class:`OutboxRelay` delivers the rows to the gateway (in-process sink
when mounted, ``POST /provenance/events`` over HTTP otherwise). Without a sink nothing is
recorded.
"""

from __future__ import annotations

import contextlib

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import Database
from vre_common.provenance import Event, EventSink, HttpEventSink, OutboxRelay, SqlOutbox
from vre_zenodo.config import ProvenanceSettings
from vre_zenodo.storage.schema import PROVENANCE_OUTBOX

log = structlog.get_logger("vre.zenodo.provenance")
_FINAL_FLUSH_SECONDS = 3.0


class ZenodoEvents:
    """Records events with the service's changes and relays them (inactive until started)."""

    def __init__(self, *, db: Database, settings: ProvenanceSettings) -> None:
        self._settings = settings
        self.outbox = SqlOutbox(PROVENANCE_OUTBOX, db.sessionmaker)
        self.relay: OutboxRelay | None = None
        self._sink: EventSink | None = None

    @property
    def active(self) -> bool:
        """True when events are recorded (a sink exists)."""
        return self.relay is not None

    def start(self, sink: EventSink | None) -> None:
        """Start relaying to ``sink`` (None, or disabled: record nothing)."""
        if not self._settings.enabled or sink is None:
            log.warning("provenance_not_recorded", reason="disabled" if sink else "no sink")
            return
        self._sink = sink
        self.relay = OutboxRelay(self.outbox, sink, interval=self._settings.relay_interval_seconds)
        self.relay.start()

    async def stop(self) -> None:
        """Stop the relay after a last, short delivery attempt; undelivered events stay."""
        if self.relay is not None:
            await self.relay.stop()
            with contextlib.suppress(Exception), anyio.move_on_after(_FINAL_FLUSH_SECONDS):
                await self.relay.run_once()
        if isinstance(self._sink, HttpEventSink):
            await self._sink.aclose()
        self.relay = self._sink = None

    async def record(self, session: AsyncSession, event: Event) -> None:
        """Add ``event`` to the session's transaction (nothing when inactive)."""
        if self.active:
            await self.outbox.add(session, event)

    def wake(self) -> None:
        """Deliver soon (call once the transaction that recorded events committed)."""
        if self.relay is not None:
            self.relay.wake()
