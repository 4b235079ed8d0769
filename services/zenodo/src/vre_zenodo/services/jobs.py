"""JobSupervisor: background jobs as asyncio tasks owned by the app's lifespan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.get_logger("vre.zenodo.jobs")

Job = Callable[[], Awaitable[None]]


class JobSupervisor:
    """Runs jobs (imports, uploads) as tasks, at most ``max_concurrent`` at once.

    A job is started only once the request that created its record has committed
    (:meth:`start_after_commit`), so it always finds its row. At shutdown every task is
    cancelled and awaited; a job's ``on_cancel`` records that it was interrupted. Jobs left
    running by a process that died are marked interrupted at the next start (by the app).
    """

    def __init__(self, max_concurrent: int) -> None:
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    def running(self, key: str) -> bool:
        """Whether a job with this key is queued or running in this process."""
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def start(self, key: str, job: Job, on_cancel: Job | None = None) -> None:
        """Start ``job`` (no-op if one with the same key is still active)."""
        if self._closing or self.running(key):
            return
        task = asyncio.get_running_loop().create_task(
            self._run(key, job, on_cancel), name=f"zenodo-job-{key}"
        )
        self._tasks[key] = task

        def _forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(key) is done:
                del self._tasks[key]

        task.add_done_callback(_forget)

    def start_after_commit(
        self, session: AsyncSession, key: str, job: Job, on_cancel: Job | None = None
    ) -> None:
        """Start ``job`` once ``session`` commits (never, if it rolls back)."""
        loop = asyncio.get_running_loop()

        def _committed(_: Any) -> None:
            loop.call_soon(self.start, key, job, on_cancel)

        event.listen(session.sync_session, "after_commit", _committed, once=True)

    async def _run(self, key: str, job: Job, on_cancel: Job | None) -> None:
        try:
            async with self._semaphore:
                await job()
        except asyncio.CancelledError:
            if on_cancel is not None:
                try:
                    await asyncio.shield(on_cancel())
                except Exception:  # recording the interruption must not mask the cancel
                    log.exception("job_cancel_record_failed", job=key)
            raise
        except Exception:  # a job records its own failures; anything else is a bug
            log.exception("job_crashed", job=key)

    async def cancel(self, key: str) -> None:
        """Cancel one job and wait for it to stop."""
        task = self._tasks.get(key)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def join(self, key: str) -> None:
        """Wait for a job to finish."""
        task = self._tasks.get(key)
        if task is not None:
            await asyncio.wait([task])

    async def shutdown(self) -> None:
        """Cancel every job and wait for them (each records its interruption)."""
        self._closing = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


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
