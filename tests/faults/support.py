"""Tools of the fault suite: a TCP proxy that makes a backend die at a chosen request, and the
checks every case makes (problem document, bounded answer time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

PROBLEM = "application/problem+json"
Action = Callable[[], Awaitable[None]]


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, object]:
    """The answer is an RFC 9457 problem with one of ``statuses``; its body."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, object] = response.json()
    assert body["status"] == response.status_code
    assert body["detail"], body
    return body


def assert_within(started: float, bound: float, what: str) -> None:
    """The answer came within the configured ``bound`` (seconds) of ``started`` (monotonic)."""
    elapsed = time.monotonic() - started
    assert elapsed <= bound, f"{what}: answered after {elapsed:.1f} s, configured bound {bound} s"


@dataclass
class _Rule:
    prefix: bytes
    action: Action
    after_bytes: int | None = None  # None: before the request is forwarded
    fired: bool = False


@dataclass
class FaultProxy:
    """A TCP proxy in front of a backend that runs an action at a chosen request.

    ``before(prefix, action)``: when a request line starts with ``prefix``, run ``action``
    (e.g. stop the backend) and drop the connection without forwarding the request — the
    backend died as the request arrived. ``after(prefix, n, action)``: forward the request and
    ``n`` bytes of its answer, then run ``action`` and drop the connection — the backend died
    after doing the work (or while streaming the answer). Each rule fires once.
    ``fired_at`` is when the last action began (``time.monotonic()``): the outage's start.
    """

    upstream_port: int
    port: int = 0
    rules: list[_Rule] = field(default_factory=list)
    fired_at: float | None = None
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def before(self, prefix: bytes, action: Action) -> None:
        self.rules.append(_Rule(prefix, action))

    def after(self, prefix: bytes, after_bytes: int, action: Action) -> None:
        self.rules.append(_Rule(prefix, action, after_bytes))

    def _match(self, head: bytes, *, forwarded: bool) -> _Rule | None:
        for rule in self.rules:
            armed = not rule.fired and (rule.after_bytes is not None) == forwarded
            if armed and head.startswith(rule.prefix):
                rule.fired = True
                return rule
        return None

    async def _fire(self, rule: _Rule) -> None:
        self.fired_at = time.monotonic()
        await rule.action()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()  # each handler sees its connection end and returns
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=30)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # a strong reference until the connection is done
        self._open.add(client_w)
        try:
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                return  # the backend is down: the client sees its connection closed
            armed: list[_Rule] = []  # answer rules of the request in flight
            pumps = [
                asyncio.ensure_future(self._requests(client_r, up_w, armed)),
                asyncio.ensure_future(self._answers(up_r, client_w, armed)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            up_w.transport.abort()
            client_w.transport.abort()
            await asyncio.wait(pumps)  # both end now that their sockets are gone
        finally:
            client_w.transport.abort()
            self._open.discard(client_w)
            self._tasks.discard(task)

    async def _requests(
        self, client_r: asyncio.StreamReader, up_w: asyncio.StreamWriter, armed: list[_Rule]
    ) -> None:
        try:
            while chunk := await client_r.read(65536):
                head = chunk.split(b"\r\n", 1)[0]
                rule = self._match(head, forwarded=False)
                if rule is not None:
                    await self._fire(rule)
                    return
                later = self._match(head, forwarded=True)
                if later is not None:
                    armed.append(later)
                up_w.write(chunk)
                await up_w.drain()
        except OSError:
            pass

    async def _answers(
        self, up_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, armed: list[_Rule]
    ) -> None:
        sent = 0  # bytes of the armed request's answer passed on
        try:
            while chunk := await up_r.read(65536):
                rule = armed[0] if armed else None
                if rule is not None and rule.after_bytes is not None:
                    if sent + len(chunk) > rule.after_bytes:  # the backend answered: cut here
                        keep = rule.after_bytes - sent
                        if keep > 0:
                            client_w.write(chunk[:keep])
                            await client_w.drain()
                        armed.pop(0)
                        await self._fire(rule)
                        return
                    sent += len(chunk)
                client_w.write(chunk)
                await client_w.drain()
        except OSError:
            pass
