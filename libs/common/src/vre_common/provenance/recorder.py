"""A service's event recorder: its SQL outbox and the relay that delivers it, started with
the gateway's sink."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

import structlog
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vre_common.db import Database
from vre_common.provenance.events import Event
from vre_common.provenance.outbox import SqlOutbox
from vre_common.provenance.relay import OutboxRelay
from vre_common.provenance.sink import EventSink, HttpEventSink
from vre_common.settings import ProvenanceSettings

log = structlog.get_logger("vre.provenance")


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
