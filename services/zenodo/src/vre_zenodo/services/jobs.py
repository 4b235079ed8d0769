"""Helpers of the zenodo service's background jobs (the runner is :mod:`vre_common.jobs`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable


async def counted(
    chunks: AsyncIterable[bytes],
    on_progress: Callable[[int], Awaitable[None]],
    interval: float,
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, reporting the byte count at most every ``interval`` s."""
    done = 0
    last = time.monotonic()
    async for chunk in chunks:
        done += len(chunk)
        yield chunk
        now = time.monotonic()
        if now - last >= interval:
            last = now
            await on_progress(done)
