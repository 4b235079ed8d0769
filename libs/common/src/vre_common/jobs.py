"""JobSupervisor: a service's background jobs as asyncio tasks owned by the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import Gauge
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

Job = Callable[[], Awaitable[None]]

JOBS = Gauge(
    "vre_jobs",
    "Background jobs of this process: waiting for a slot (queued) or running",
    ["service", "state"],
)


class JobSupervisor:
    """Runs jobs as tasks, at most ``max_concurrent`` at once, one per key.

    A job whose record a request creates is started only once that request has committed
    (:meth:`start_after_commit`), so it always finds its row. Cancelling a job (a user's
    cancel, the service's shutdown) runs its ``on_cancel``, which records the final state;
    at shutdown every task is cancelled and awaited. Jobs left active by a process that died
    are marked interrupted at the next start (by the service's factory).
    """

    def __init__(self, max_concurrent: int, *, service: str) -> None:
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._service = service
        self._log = structlog.get_logger(f"vre.{service}.jobs")

    def running(self, key: str) -> bool:
        """Whether a job with this key is queued or running in this process."""
        task = self._tasks.get(key)
        return task is not None and not task.done()

    def start(self, key: str, job: Job, on_cancel: Job | None = None) -> None:
        """Start ``job`` (no-op if one with the same key is active or we are closing)."""
        if self._closing or self.running(key):
            return
        task = asyncio.get_running_loop().create_task(
            self._run(key, job, on_cancel), name=f"{self._service}-job-{key}"
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
        queued, running = (
            JOBS.labels(self._service, "queued"),
            JOBS.labels(self._service, "running"),
        )
        queued.inc()
        try:
            try:
                await self._semaphore.acquire()
            finally:
                queued.dec()
            running.inc()
            try:
                await job()
            finally:
                running.dec()
                self._semaphore.release()
        except asyncio.CancelledError:
            if on_cancel is not None:
                try:
                    await asyncio.shield(on_cancel())
                except Exception:  # recording the cancellation must not mask it
                    self._log.exception("job_cancel_record_failed", job=key)
            raise
        except Exception:  # a job records its own failures; anything else is a bug
            self._log.exception("job_crashed", job=key)

    async def cancel(self, key: str) -> bool:
        """Cancel one job and wait for it to stop; False if it was not running here."""
        task = self._tasks.get(key)
        if task is None or task.done():
            return False
        task.cancel()
        await asyncio.wait([task])
        return True

    async def join(self, key: str) -> None:
        """Wait for a job to finish."""
        task = self._tasks.get(key)
        if task is not None:
            await asyncio.wait([task])

    async def shutdown(self) -> None:
        """Cancel every job and wait for them (each records its end)."""
        self._closing = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
