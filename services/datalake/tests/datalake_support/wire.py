"""A TCP proxy that writes down every HTTP request line that passes it (requests on the wire)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class CountingProxy:
    """Forwards loopback connections to ``upstream_port``; ``requests`` holds each request's
    ``METHOD /path`` (query string dropped) in the order they were sent. A request whose
    ``METHOD /path`` is a key of ``gates`` is passed on once that event is set."""

    upstream_port: int
    port: int = 0
    requests: list[str] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()  # each handler sees its connections end and returns
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._open.add(client_w)
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._open.add(up_w)
            pumps = [
                asyncio.ensure_future(self._requests(client_r, up_w)),
                asyncio.ensure_future(self._pipe(up_r, client_w)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            up_w.transport.abort()
            client_w.transport.abort()
            await asyncio.wait(pumps)  # both end now that their sockets are gone
            self._open.discard(up_w)
        except OSError:
            pass
        finally:
            client_w.transport.abort()
            self._open.discard(client_w)
            self._tasks.discard(task)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Parse each request (head, then a Content-Length body) and pass it on."""
        with contextlib.suppress(asyncio.IncompleteReadError, OSError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                self.requests.append(f"{method} {target.split('?', 1)[0]}")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                gate = self.gates.get(self.requests[-1])
                if gate is not None:
                    await gate.wait()
                writer.write(head + body)
                await writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
