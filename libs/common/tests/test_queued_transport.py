"""QueuedTransport: at most N requests out at once, the rest wait in front of the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from vre_common.http import QueuedTransport


class Body(httpx.AsyncByteStream):
    """A body sent as it is read, as a real connection's."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


class Counting(httpx.AsyncBaseTransport):
    """Answers after ``delay`` seconds; records how many requests were out at once."""

    def __init__(self, delay: float = 0.01, fail: set[str] | None = None) -> None:
        self.delay = delay
        self.fail = fail or set()
        self.out = 0
        self.most = 0
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.out += 1
        self.most = max(self.most, self.out)
        self.seen.append(request.url.path)
        try:
            await asyncio.sleep(self.delay)
            if request.url.path in self.fail:
                raise httpx.ConnectError("refused", request=request)
        finally:
            self.out -= 1
        return httpx.Response(200, stream=Body(request.url.path.encode()))


async def test_no_more_than_the_slots_are_out_and_every_request_is_answered() -> None:
    inner = Counting()
    async with httpx.AsyncClient(transport=QueuedTransport(inner, 4), base_url="http://x") as c:
        answers = await asyncio.gather(*(c.get(f"/{i}") for i in range(40)))
    assert [a.text for a in answers] == [f"/{i}" for i in range(40)]
    assert inner.most == 4
    assert inner.seen == [f"/{i}" for i in range(40)]  # in the order they came


async def test_a_stream_keeps_its_slot_until_it_is_closed() -> None:
    transport = QueuedTransport(Counting(delay=0), 1)
    timeout = httpx.Timeout(5, pool=0.2)
    async with httpx.AsyncClient(transport=transport, base_url="http://x", timeout=timeout) as c:
        async with c.stream("GET", "/long") as response:
            assert response.status_code == 200
            with pytest.raises(httpx.PoolTimeout):
                await c.get("/waits")  # the one slot is the open stream's
        assert (await c.get("/next")).text == "/next"  # closed: the slot is free again


async def test_a_failed_request_gives_its_slot_back() -> None:
    inner = Counting(fail={"/refused"})
    timeout = httpx.Timeout(5, pool=0.5)
    async with httpx.AsyncClient(
        transport=QueuedTransport(inner, 1), base_url="http://x", timeout=timeout
    ) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("/refused")
        assert (await c.get("/after")).text == "/after"


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    inner = Counting(delay=0.2)
    async with httpx.AsyncClient(transport=QueuedTransport(inner, 1), base_url="http://x") as c:
        first = asyncio.create_task(c.get("/first"))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(c.get("/cancelled"))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await first
        assert (await c.get("/then")).text == "/then"
    assert "/cancelled" not in inner.seen


async def test_a_body_read_already_holds_no_slot() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"read")  # read when built

    transport = QueuedTransport(httpx.MockTransport(answer), 1)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        assert [(await c.get("/")).text for _ in range(3)] == ["read"] * 3
