"""The relay: moves events from an outbox to a sink, at least once, in order of recording;
retries transient failures with capped exponential backoff, parks an event the gateway
refuses as invalid, and exports the backlog as metrics."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable

import httpx
import structlog
from prometheus_client import Gauge

from vre_common.errors import VreError
from vre_common.provenance.events import Event
from vre_common.provenance.outbox import Backlog, OutboxItem, OutboxStore
from vre_common.provenance.sink import EventSink, RejectedEventsError

log = structlog.get_logger("vre.provenance")

Confirm = Callable[[Event], Awaitable[bool | None]]


OUTBOX_WAITING = Gauge(
    "vre_outbox_waiting_events",
    "Provenance events waiting in an outbox for delivery",
    ["outbox"],
    multiprocess_mode="livesum",  # the embedded mode on several processes: one outbox each
)
OUTBOX_OLDEST = Gauge(
    "vre_outbox_oldest_event_age_seconds",
    "Age of the oldest event waiting in an outbox (0 when empty)",
    ["outbox"],
    multiprocess_mode="livemax",
)
OUTBOX_DEAD = Gauge(
    "vre_outbox_dead_events",
    "Events the gateway refused as invalid, parked",
    ["outbox"],
    multiprocess_mode="livesum",
)


class OutboxRelay:
    """Moves events from an outbox to a sink: at least once, in order of recording.

    ``run_once()`` does one pass (tests call it); ``start()``/``stop()`` run passes every
    ``interval`` seconds in a task (a service's lifespan); ``wake()`` starts a pass now. The
    background passes ask about events a crash left pending, and export the backlog, once per
    ``interval``, not on every wake (under load, a wake per upload).
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

    async def run_once(self, *, settle: bool = True) -> int:
        """Deliver every due event (batch by batch), after settling what a crash left pending
        (``settle``); return how many were acknowledged."""
        if settle:
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
        loop = asyncio.get_running_loop()
        kept = -math.inf  # when the pending events were last settled and the backlog exported
        while True:
            try:
                keep = loop.time() - kept >= self.interval
                await self.run_once(settle=keep)
                if keep:
                    await self.export_backlog()
                    kept = loop.time()
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
