"""Rucio calls on a keep-alive connection the server closes: idempotent ones are sent again.

The server here is real (asyncio TCP, HTTP/1.1): it answers the first request of each
connection with keep-alive and, on the next request of that connection, reads it and closes
without answering — what a client sees when Rucio's gunicorn drops an idle connection, or
restarts, just as a pooled connection is reused.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from vre_common.errors import BackendUnavailableError
from vre_datalake.backends.rucio.rest import CONNECTION_RETRIES, RucioRest, may_resend
from vre_datalake.config import RucioSettings


@dataclass
class ClosingServer:
    """Answers one request per connection, then drops the connection on the next one."""

    port: int = 0
    received: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    server: asyncio.Server | None = None

    async def _read_request(self, reader: asyncio.StreamReader) -> str | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode().split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        method, target, _ = lines[0].split(" ", 2)
        key = f"{method} {target.split('?')[0]}"
        self.received[key] += 1
        return key

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            key = await self._read_request(reader)
            if key is None:
                return
            if key.endswith("/stream"):
                body = b'{"n": 1}\n{"n": 2}\n'
                kind = b"application/x-json-stream"
            else:
                body = json.dumps({"answered": key}).encode()
                kind = b"application/json"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + body
            )  # fmt: skip
            await writer.drain()
            await self._read_request(reader)  # the next request on this connection: dropped
        finally:
            writer.close()

    async def __aenter__(self) -> ClosingServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def closing() -> AsyncIterator[tuple[ClosingServer, RucioRest]]:
    async with ClosingServer() as server:
        # A long keep-alive on our side, so the pooled connection is reused.
        settings = RucioSettings(url=f"http://127.0.0.1:{server.port}", keepalive_expiry_seconds=60)
        rest = RucioRest(settings)
        try:
            yield server, rest
        finally:
            await rest.aclose()


async def test_get_on_a_dropped_keepalive_connection_is_sent_again(
    closing: tuple[ClosingServer, RucioRest],
) -> None:
    server, rest = closing
    first = await rest.json("GET", "/dids/user.a/x", auth=None, operation="get_did")
    assert first == {"answered": "GET /dids/user.a/x"}
    second = await rest.json("GET", "/dids/user.a/x", auth=None, operation="get_did")
    assert second == {"answered": "GET /dids/user.a/x"}
    # the second call reached the server twice: on the reused connection (dropped) and anew
    assert server.received["GET /dids/user.a/x"] == 3
    assert server.connections == 2


async def test_post_that_was_sent_is_never_sent_again(
    closing: tuple[ClosingServer, RucioRest],
) -> None:
    server, rest = closing
    body = {"dids": [{"scope": "user.a", "name": "x"}], "copies": 1, "rse_expression": "R"}
    await rest.request("POST", "/rules/", auth=None, operation="add_rule", json_body=body)
    with pytest.raises(BackendUnavailableError) as failure:
        await rest.request("POST", "/rules/", auth=None, operation="add_rule", json_body=body)
    assert failure.value.status == 503
    assert "add_rule" in failure.value.detail
    assert server.received["POST /rules/"] == 2  # once per call: the lost one was not repeated


async def test_reads_taken_by_post_are_sent_again_and_streams_too(
    closing: tuple[ClosingServer, RucioRest],
) -> None:
    server, rest = closing
    body = {"dids": [{"scope": "user.a", "name": "x"}]}
    for _ in range(2):
        items = [
            item
            async for item in rest.stream(
                "POST",
                "/replicas/list/stream",
                auth=None,
                operation="list_replicas",
                json_body=body,
                idempotent=True,
            )
        ]
        assert items == [{"n": 1}, {"n": 2}]
    assert server.received["POST /replicas/list/stream"] == 3


async def test_a_server_that_keeps_dropping_gives_503_after_the_retries() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rest = RucioRest(RucioSettings(url=f"http://127.0.0.1:{port}", retry_after_seconds=7))
    try:
        with pytest.raises(BackendUnavailableError) as failure:
            await rest.request("GET", "/ping", auth=None, operation="ping")
        assert failure.value.headers["Retry-After"] == "7"
    finally:
        await rest.aclose()
        server.close()
        await server.wait_closed()


def test_which_failures_allow_sending_again() -> None:
    request = httpx.Request("POST", "http://rucio/rules/")
    refused = httpx.ConnectError("refused", request=request)
    reset = httpx.ReadError("reset", request=request)
    closed = httpx.RemoteProtocolError("closed", request=request)
    slow = httpx.ReadTimeout("slow", request=request)
    assert may_resend(refused, idempotent=False)  # nothing reached the server
    assert not may_resend(reset, idempotent=False)
    assert not may_resend(closed, idempotent=False)
    assert may_resend(reset, idempotent=True)
    assert may_resend(closed, idempotent=True)
    assert not may_resend(slow, idempotent=True)  # a timeout is not multiplied by retries
    assert CONNECTION_RETRIES >= 1
