"""Streaming through a real uvicorn server in its own process: big files, disconnects, memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from services.datalake.tests.datalake_support import ServedApp
from vre_common.testing import TestIssuer

MiB = 1 << 20


async def pattern(total: int, chunk: int = MiB) -> AsyncIterator[bytes]:
    """``total`` bytes of varying content, produced chunk by chunk (never all in memory)."""
    block = os.urandom(chunk)
    sent = 0
    index = 0
    while sent < total:
        size = min(chunk, total - sent)
        # vary each chunk cheaply so a misplaced chunk would change the checksum
        piece = index.to_bytes(8, "little") + block[8:size] if size >= 8 else block[:size]
        yield piece
        sent += size
        index += 1


async def stream_up(
    served: ServedApp, issuer: TestIssuer, path: str, total: int
) -> tuple[httpx.Response, str]:
    md5 = hashlib.md5()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in pattern(total):
            md5.update(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=served.url, timeout=300) as http:
        response = await http.put(f"/files/{path}", content=body(), headers=issuer.headers())
    return response, md5.hexdigest()


async def stream_down(served: ServedApp, issuer: TestIssuer, path: str) -> tuple[int, str]:
    md5 = hashlib.md5()
    size = 0
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=300) as http,
        http.stream("GET", f"/files/{path}", headers=issuer.headers()) as response,
    ):
        assert response.status_code == 200, await response.aread()
        async for chunk in response.aiter_bytes(MiB):
            md5.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest()


async def test_streamed_upload_and_download_chunked(
    served: ServedApp, issuer: TestIssuer, uid: str
) -> None:
    total = 48 * MiB + 123
    put, sent_md5 = await stream_up(served, issuer, f"user.alice/{uid}/big.bin", total)
    assert put.status_code == 201, put.text
    assert put.json()["bytes"] == total
    assert put.json()["md5"] == sent_md5
    size, got_md5 = await stream_down(served, issuer, f"user.alice/{uid}/big.bin")
    assert (size, got_md5) == (total, sent_md5)


def files_with(root: Path, fragment: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and fragment in str(p)]


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _raw_put(url: str, path: str, headers: dict[str, str], declared: int, sent: int) -> None:
    """Send a PUT announcing ``declared`` bytes, send ``sent`` of them, then hang up."""
    parts = urlsplit(url)
    lines = [
        f"PUT /files/{path} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Length: {declared}",
        "Content-Type: application/octet-stream",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall("\r\n".join(lines).encode())
        chunk = b"z" * MiB
        for _ in range(sent // MiB):
            sock.sendall(chunk)
        time.sleep(0.3)  # let the server write what it received
        sock.shutdown(socket.SHUT_RDWR)


async def test_interrupted_upload_registers_nothing_and_leaves_no_bytes(
    served: ServedApp, issuer: TestIssuer, uid: str, rse_root: Path
) -> None:
    _raw_put(served.url, f"user.alice/{uid}/cut.bin", issuer.headers(), 32 * MiB, 8 * MiB)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        deadline = time.monotonic() + 10
        leftovers = ["not checked"]
        while time.monotonic() < deadline:
            leftovers = files_with(rse_root, uid)
            if not leftovers:
                break
            await asyncio.sleep(0.1)
        assert leftovers == []
        missing = await http.get(f"/dids/user.alice/{uid}/cut.bin", headers=issuer.headers())
        assert missing.status_code == 404, missing.text
        # the same name is still free for a complete upload
        ok = await http.put(
            f"/files/user.alice/{uid}/cut.bin", content=b"complete", headers=issuer.headers()
        )
        assert ok.status_code == 201, ok.text


async def test_corrupt_replica_breaks_the_download(
    served: ServedApp, issuer: TestIssuer, uid: str
) -> None:
    total = 3 * MiB + 5
    put, _ = await stream_up(served, issuer, f"user.alice/{uid}/flip.bin", total)
    assert put.status_code == 201, put.text
    flip_byte(Path(urlsplit(put.json()["pfn"]).path), total // 2)  # as bit rot would
    with pytest.raises(httpx.HTTPError):
        await stream_down(served, issuer, f"user.alice/{uid}/flip.bin")
    # a range read is not verified (no checksum of a part) and still works
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        part = await http.get(
            f"/files/user.alice/{uid}/flip.bin",
            headers={**issuer.headers(), "Range": "bytes=0-99"},
        )
    assert part.status_code == 206
    assert len(part.content) == 100


@pytest.mark.slow
async def test_one_gib_up_and_down_in_flat_memory(
    served: ServedApp, issuer: TestIssuer, uid: str
) -> None:
    total = 1024 * MiB
    baseline = served.rss()
    started = time.perf_counter()
    put, sent_md5 = await stream_up(served, issuer, f"user.alice/{uid}/gib.bin", total)
    up = time.perf_counter() - started
    assert put.status_code == 201, put.text
    assert put.json()["md5"] == sent_md5
    started = time.perf_counter()
    size, got_md5 = await stream_down(served, issuer, f"user.alice/{uid}/gib.bin")
    down = time.perf_counter() - started
    assert (size, got_md5) == (total, sent_md5)
    peak = served.peak_rss()
    # informative only (timings are not asserted): the bench measures throughput properly
    print(
        f"1 GiB: up {up:.1f} s, down {down:.1f} s (client md5 included); server RSS "
        f"baseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB"
    )
    assert peak < baseline + 100 * MiB, (baseline, peak)
    assert peak < total / 4
