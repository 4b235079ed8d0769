"""Checksums as Rucio records them (adler32 as 8 hex digits, md5 as 32), computed on the way."""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import re
import zlib
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from vre_common.errors import BadRequestError

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


# Below this a chunk is hashed on the event loop: a thread hand-off costs more than the hash.
IN_THREAD_FROM = 256 * 1024


async def _after(
    before: asyncio.Future[None] | None, update: Callable[[bytes], None], chunk: bytes
) -> None:
    if before is not None:
        await before
    await anyio.to_thread.run_sync(update, chunk)


class Checksummer:
    """adler32 and md5 of a byte stream, updated chunk by chunk.

    :meth:`add` starts a chunk's sums in worker threads and returns at once: md5 and
    adler32 each go in a lane of their own, in order, so the md5 of one chunk (the slowest
    step of an upload: one core's worth) runs while adler32 of the next, the writes and the
    receiving go on. hashlib and zlib release the GIL on chunks this large.
    """

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._adler = 1
        self.bytes = 0
        self._md5_lane: asyncio.Future[None] | None = None  # the last chunk's md5 update
        self._adler_lane: asyncio.Future[None] | None = None
        self._in_flight: collections.deque[asyncio.Future[Any]] = collections.deque()

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` here and now."""
        self._md5.update(chunk)
        self._adler = zlib.adler32(chunk, self._adler)
        self.bytes += len(chunk)

    def _update_adler32(self, chunk: bytes) -> None:
        self._adler = zlib.adler32(chunk, self._adler)

    def add(self, chunk: bytes) -> None:
        """Start the sums of ``chunk`` after those of the chunks added before it.

        A small chunk with nothing in flight is summed here: a thread hand-off costs more.
        """
        if not self._in_flight and len(chunk) < IN_THREAD_FROM:
            self.update(chunk)
            return
        self.bytes += len(chunk)
        md5 = asyncio.ensure_future(_after(self._md5_lane, self._md5.update, chunk))
        adler = asyncio.ensure_future(_after(self._adler_lane, self._update_adler32, chunk))
        self._md5_lane, self._adler_lane = md5, adler
        self._in_flight.append(asyncio.gather(md5, adler))

    async def keep_up(self, behind: int = 0) -> None:
        """Wait until at most ``behind`` added chunks are still being summed."""
        while len(self._in_flight) > behind:
            await self._in_flight[0]
            self._in_flight.popleft()

    async def abandon(self) -> None:
        """Stop the sums still in flight (the upload failed or was cancelled)."""
        for summing in self._in_flight:
            summing.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight)
            for summing in self._in_flight:
                if not summing.cancelled():
                    summing.exception()  # read, so that nobody warns it was never retrieved
            self._in_flight.clear()

    @property
    def adler32(self) -> str:
        """The adler32 so far, as Rucio writes it (8 lower-case hex digits)."""
        return f"{self._adler & 0xFFFFFFFF:08x}"

    @property
    def md5(self) -> str:
        """The md5 so far, as 32 lower-case hex digits."""
        return self._md5.hexdigest()


class Adler32:
    """adler32 alone (what downloads verify: cheap, and Rucio always has it)."""

    def __init__(self) -> None:
        self._value = 1

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` (a large one from a worker thread: zlib releases the GIL)."""
        self._value = zlib.adler32(chunk, self._value)

    @property
    def hexdigest(self) -> str:
        """8 lower-case hex digits."""
        return f"{self._value & 0xFFFFFFFF:08x}"


def expected_md5(content_md5: str | None, digest: str | None) -> str | None:
    """The md5 (hex) a client announced in ``Content-MD5`` (RFC 1864) or ``Digest: md5=``.

    Both carry the base64 of the 16-byte digest; a 32-hex-digit value is also accepted.
    Two different announced values, or a malformed one, are a 400.
    """
    values: list[str] = []
    if content_md5:
        values.append(_decode_md5(content_md5.strip(), "Content-MD5"))
    if digest:
        for part in digest.split(","):
            algorithm, sep, value = part.strip().partition("=")
            if sep and algorithm.strip().lower() == "md5":
                values.append(_decode_md5(value.strip(), "Digest"))
    if not values:
        return None
    if len(set(values)) > 1:
        raise BadRequestError("Content-MD5 and Digest announce different md5 values")
    return values[0]


def _decode_md5(value: str, header: str) -> str:
    if _HEX32.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError(f"{header} is neither base64 nor hex md5") from exc
    if len(raw) != 16:
        raise BadRequestError(f"{header} does not hold a 16-byte md5 digest")
    return raw.hex()


def etag_for(adler32: str | None, md5: str | None) -> str | None:
    """A strong ETag from the file's checksum (content-derived, so equal bytes share it)."""
    if adler32:
        return f'"adler32-{adler32}"'
    if md5:
        return f'"md5-{md5}"'
    return None
