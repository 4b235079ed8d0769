"""Group commit: concurrent writes of one kind go to Rucio in one request.

Rucio's write APIs take many files per call (``POST /replicas`` a list of files on one RSE,
``POST /rules/`` a list of DIDs), and most of a call's cost is per request (authentication,
validation, the RSE expression, quota sums). :class:`GroupCommit` sends what waits under one
key (the identity and RSE the call is made with) in one call:

- a caller alone goes at once (a batch of one: no added latency);
- while a call of a key is out, what arrives for that key waits for it, and the next call
  carries everything that waited (up to ``max_batch``): the batch grows with the load;
- every caller gets its own outcome. When a batch is refused (Rucio does a call in one
  transaction, so one bad item refuses all), each item is sent again alone, so that one bad
  file cannot fail the others; when the outcome of a batch is unknown (``split`` says no:
  Rucio unreachable, a 5xx), every caller gets that error, as it would have alone;
- a caller that goes away does not stop the call that carries its item and others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class GroupCommit(Generic[K, T]):
    """Sends items of one key together: ``send(key, items)`` for a batch, ``send_one`` for an
    item alone (also after a refused batch, when ``split(error)`` says so)."""

    def __init__(
        self,
        send: Callable[[K, Sequence[T]], Awaitable[None]],
        *,
        send_one: Callable[[K, T], Awaitable[None]],
        split: Callable[[BaseException], bool],
        max_batch: int = 64,
    ) -> None:
        self._send = send
        self._send_one = send_one
        self._split = split
        self._max_batch = max(1, max_batch)
        self._waiting: dict[K, list[tuple[T, asyncio.Future[None]]]] = {}
        self._senders: dict[K, asyncio.Task[None]] = {}
        self.calls = 0  # requests sent (for the tests and the report)

    async def submit(self, key: K, item: T) -> None:
        """Send ``item`` with whatever else waits under ``key``; its own outcome."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[None] = loop.create_future()
        outcome.add_done_callback(_retrieved)
        self._waiting.setdefault(key, []).append((item, outcome))
        if key not in self._senders:
            self._senders[key] = loop.create_task(self._drain(key))
        await asyncio.shield(outcome)

    def waiting(self) -> int:
        """How many items wait for a call (under any key)."""
        return sum(len(items) for items in self._waiting.values())

    async def aclose(self) -> None:
        """Wait for the calls under way (their callers get their outcomes)."""
        while self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)

    async def _drain(self, key: K) -> None:
        try:
            while True:
                waiting = self._waiting.get(key)
                if not waiting:
                    return
                batch = waiting[: self._max_batch]
                del waiting[: self._max_batch]
                await self._one_call(key, batch)
        finally:
            del self._senders[key]
            leftover = self._waiting.pop(key, [])
            for _, outcome in leftover:  # only if this task was cancelled (the loop stops)
                if not outcome.done():
                    outcome.set_exception(asyncio.CancelledError())

    async def _one_call(self, key: K, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            self.calls += 1
            if len(batch) == 1:
                await self._send_one(key, batch[0][0])
            else:
                await self._send(key, [item for item, _ in batch])
        except Exception as exc:  # handed to every caller, or split
            if len(batch) > 1 and self._split(exc):
                await asyncio.gather(*(self._alone(key, item, outcome) for item, outcome in batch))
                return
            for _, outcome in batch:
                _settle(outcome, exc)
        except BaseException as exc:  # cancelled: the callers cannot know what Rucio did
            for _, outcome in batch:
                _settle(outcome, exc)
            raise
        else:
            for _, outcome in batch:
                _settle(outcome, None)

    async def _alone(self, key: K, item: T, outcome: asyncio.Future[None]) -> None:
        try:
            self.calls += 1
            await self._send_one(key, item)
        except Exception as exc:  # the caller's own outcome
            _settle(outcome, exc)
        except BaseException as exc:
            _settle(outcome, exc)
            raise
        else:
            _settle(outcome, None)


def _settle(outcome: asyncio.Future[None], error: BaseException | None) -> None:
    if outcome.done():
        return
    if error is None:
        outcome.set_result(None)
    elif isinstance(error, asyncio.CancelledError):
        outcome.cancel()
    else:
        outcome.set_exception(error)


def _retrieved(outcome: asyncio.Future[None]) -> None:
    """A caller that went away leaves its outcome unread: read it (no warning at exit)."""
    if not outcome.cancelled():
        outcome.exception()
