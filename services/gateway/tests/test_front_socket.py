"""The front process's public socket: TCP connections it accepts send without delay."""

from __future__ import annotations

import asyncio
import os
import socket

from vre_gateway.front import inherited_socket


async def nodelay_of_an_accepted_connection(listener: socket.socket) -> int:
    """TCP_NODELAY on a connection asyncio accepted through ``listener``."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    try:
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        result = await asyncio.wait_for(seen, 5)
        writer.close()
        return result
    finally:
        server.close()
        await server.wait_closed()


def bound_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def test_connections_accepted_on_the_inherited_socket_disable_nagle() -> None:
    public = bound_listener()
    try:
        front = inherited_socket(os.dup(public.fileno()))
        assert front.family == socket.AF_INET
        assert await nodelay_of_an_accepted_connection(front) != 0
    finally:
        public.close()


async def test_a_socket_taken_for_a_unix_one_would_not() -> None:
    """What uvicorn's ``fd=`` does (``socket.fromfd(fd, AF_UNIX, …)``), and why the front does
    not use it: asyncio then leaves Nagle's algorithm on."""
    public = bound_listener()
    try:
        mistaken = socket.fromfd(public.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        assert await nodelay_of_an_accepted_connection(mistaken) == 0
    finally:
        public.close()
