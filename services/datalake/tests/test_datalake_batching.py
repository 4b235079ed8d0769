"""Group commit (vre_datalake.services.batching): batches form under load, alone is at once,
each caller gets its own outcome, a refused batch is split, a lost one is not."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from vre_common.errors import BackendUnavailableError, InvalidInputError
from vre_datalake.services.batching import GroupCommit
from vre_datalake.services.uploads import outcome_lost


class Store:
    """What a batch call does: records each call; refuses items named ``bad``; fails while
    ``down``; waits at ``gate`` while it is closed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.stored: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.down = False
        self.called = asyncio.Event()

    async def many(self, key: str, items: Sequence[str]) -> None:
        self.calls.append((key, list(items)))
        self.called.set()
        await self.gate.wait()
        if self.down:
            raise BackendUnavailableError("Rucio is unavailable (test)")
        if any(item.startswith("bad") for item in items):
            raise InvalidInputError(f"refused: {[i for i in items if i.startswith('bad')]}")
        self.stored += items

    async def one(self, key: str, item: str) -> None:
        await self.many(key, [item])


def _commit(store: Store, max_batch: int = 64) -> GroupCommit[str, str]:
    return GroupCommit(
        store.many, send_one=store.one, split=lambda e: not outcome_lost(e), max_batch=max_batch
    )


async def _started(store: Store, count: int) -> None:
    while len(store.calls) < count:
        store.called.clear()
        await store.called.wait()


async def test_alone_goes_at_once_and_what_waits_goes_together() -> None:
    store = Store()
    commit = _commit(store)
    await commit.submit("k", "first")
    assert store.calls == [("k", ["first"])]  # alone: sent at once, by itself

    store.gate.clear()  # the next call stays out while more arrive
    head = asyncio.create_task(commit.submit("k", "a"))
    await _started(store, 2)
    rest = [asyncio.create_task(commit.submit("k", name)) for name in ("b", "c", "d")]
    other = asyncio.create_task(commit.submit("other key", "x"))  # another key: not held
    await _started(store, 3)
    store.gate.set()
    await asyncio.gather(head, *rest, other)
    assert store.calls[1:] == [("k", ["a"]), ("other key", ["x"]), ("k", ["b", "c", "d"])]
    assert sorted(store.stored) == ["a", "b", "c", "d", "first", "x"]
    assert commit.calls == 4


async def test_a_refused_batch_is_sent_again_one_by_one() -> None:
    store = Store()
    commit = _commit(store)
    store.gate.clear()
    head = asyncio.create_task(commit.submit("k", "a"))
    await _started(store, 1)
    good = [asyncio.create_task(commit.submit("k", n)) for n in ("b", "c")]
    bad = asyncio.create_task(commit.submit("k", "bad-1"))
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(head, *good)
    with pytest.raises(InvalidInputError, match="bad-1"):
        await bad
    # the batch of three was refused whole, then each went alone: only the bad one failed
    assert [items for _, items in store.calls] == [["a"], ["b", "c", "bad-1"], ["b"], ["c"],
                                                   ["bad-1"]]  # fmt: skip
    assert sorted(store.stored) == ["a", "b", "c"]


async def test_a_batch_whose_outcome_is_lost_fails_every_caller_without_resending() -> None:
    store = Store()
    commit = _commit(store)
    store.gate.clear()
    head = asyncio.create_task(commit.submit("k", "a"))
    await _started(store, 1)
    waiting = [asyncio.create_task(commit.submit("k", n)) for n in ("b", "c")]
    await asyncio.sleep(0)
    store.down = True
    store.gate.set()
    outcomes = await asyncio.gather(head, *waiting, return_exceptions=True)
    assert all(isinstance(o, BackendUnavailableError) for o in outcomes)
    assert [items for _, items in store.calls] == [["a"], ["b", "c"]]  # not split


async def test_a_caller_that_goes_away_does_not_stop_the_call_of_the_others() -> None:
    store = Store()
    commit = _commit(store, max_batch=2)
    store.gate.clear()
    head = asyncio.create_task(commit.submit("k", "a"))
    await _started(store, 1)
    leaving = asyncio.create_task(commit.submit("k", "b"))
    staying = [asyncio.create_task(commit.submit("k", n)) for n in ("c", "d")]
    await asyncio.sleep(0)
    leaving.cancel()
    store.gate.set()
    await asyncio.gather(head, *staying)
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await commit.aclose()
    # "b" was on its way with "c" (at most two a call): stored all the same
    assert [items for _, items in store.calls] == [["a"], ["b", "c"], ["d"]]
    assert sorted(store.stored) == ["a", "b", "c", "d"]
