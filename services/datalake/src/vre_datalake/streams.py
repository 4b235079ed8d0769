"""Byte streams between the network and storage: re-chunking and reading ahead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


async def rechunked(source: AsyncIterator[bytes], size: int) -> AsyncGenerator[bytes, None]:
    """``source`` in chunks of at least ``size`` bytes (the last one may be shorter).

    The pieces of a chunk are joined once: the one copy of the bytes on their way.
    """
    pieces: list[bytes] = []
    held = 0
    async for piece in source:
        pieces.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(pieces)
            pieces.clear()
            held = 0
    if held:
        yield b"".join(pieces)


@dataclass(frozen=True)
class _Failed:
    error: Exception


class _End:
    pass


_END = _End()


async def read_ahead(source: AsyncIterator[T], depth: int) -> AsyncGenerator[T, None]:
    """``source`` pulled by a task of its own, up to ``depth`` items ahead of the consumer.

    Receiving or reading the next chunks then goes on while the consumer writes, sums or
    sends the current one, instead of one after the other. The task starts with the first
    item asked for. A failure of the source reaches the consumer after the items before it;
    a consumer that stops early (closes this generator) stops the task and closes the source.
    """
    queue: asyncio.Queue[T | _Failed | _End] = asyncio.Queue(max(1, depth))

    async def pull() -> None:
        try:
            try:
                async for item in source:
                    await queue.put(item)
            finally:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
        except Exception as exc:  # handed to the consumer, after the items before it
            await queue.put(_Failed(exc))
        else:
            await queue.put(_END)

    task = asyncio.ensure_future(pull())
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        if not task.done():  # the consumer left early (or the task is on its last step)
            task.cancel()
            await asyncio.wait([task])  # the task hands every Exception on: none is lost
