"""A service's background jobs: :class:`JobSupervisor` runs them as asyncio tasks owned by the
app's lifespan; :class:`JobStore` is the base of their SQL stores (rows as models, the owner's
jobs, and at start the jobs a previous process left active marked interrupted)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from prometheus_client import Gauge
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import ExecutableOption

from vre_common.db import after_commit, utcnow
from vre_common.problems import interrupted_problem

Job = Callable[[], Awaitable[None]]
RowT = TypeVar("RowT")
ModelT = TypeVar("ModelT")

JOBS = Gauge(
    "vre_jobs",
    "Background jobs of this process: waiting for a slot (queued) or running",
    ["service", "state"],
    multiprocess_mode="livesum",  # the embedded mode on several processes
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
        after_commit(session, lambda: loop.call_soon(self.start, key, job, on_cancel))

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


class JobStore(Generic[RowT, ModelT]):
    """The base of a job store: one ORM row class per job (``id``, ``owner``,
    ``created_at`` and a state column), read as models, never committed here (the caller's
    unit of work does).

    A subclass names its ``row`` class, its state and owner columns, its ``active_states``,
    what a job left active becomes (:meth:`interrupted_values`) and how a row becomes a
    model (:meth:`to_model`); ``load`` are the loader options of a whole job (its files …).
    """

    row: ClassVar[type[Any]]
    state_column: ClassVar[str] = "state"
    owner_column: ClassVar[str] = "owner"
    active_states: ClassVar[tuple[str, ...]] = ("queued", "running")
    load: ClassVar[Sequence[ExecutableOption]] = ()

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def to_model(self, row: RowT) -> ModelT:
        """The row as the service's model."""
        raise NotImplementedError

    def interrupted_values(self) -> dict[str, Any]:
        """The columns a job left active by a previous process gets (often
        :meth:`interrupted`)."""
        raise NotImplementedError

    def interrupted(self, state: str, detail: str, *, stamp: str = "finished_at") -> dict[str, Any]:
        """The usual :meth:`interrupted_values`: the state ``state``, the ``stamp`` column now
        and an ``interrupted`` problem (503) saying ``detail``."""
        return {self.state_column: state, stamp: utcnow(), "error": interrupted_problem(detail)}

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        """A column of the row class (``id``, ``owner``, the state …)."""
        attribute: InstrumentedAttribute[Any] = getattr(self.row, name)
        return attribute

    def is_active(self) -> ColumnElement[bool]:
        """The condition of a job still queued or running."""
        return self.column(self.state_column).in_(self.active_states)

    async def one_row(self, job_id: Any, owner: str | None = None) -> RowT | None:
        """A job's row read afresh (jobs change in other sessions); with ``owner``, only if
        it is theirs."""
        query = select(self.row).where(self.column("id") == job_id).options(*self.load)
        if owner is not None:
            query = query.where(self.column(self.owner_column) == owner)
        result = await self.session.execute(query.execution_options(populate_existing=True))
        row: RowT | None = result.scalar_one_or_none()
        return row

    async def get(self, job_id: Any, *, owner: str | None = None) -> ModelT | None:
        """One job (``owner``: only if it is theirs)."""
        row = await self.one_row(job_id, owner)
        return self.to_model(row) if row is not None else None

    async def list_owned(self, owner: str, *, limit: int | None = 100) -> list[ModelT]:
        """The owner's jobs, newest first."""
        query = (
            select(self.row)
            .where(self.column(self.owner_column) == owner)
            .order_by(self.column("created_at").desc(), self.column("id"))
            .options(*self.load)
        )
        if limit is not None:
            query = query.limit(limit)
        return [self.to_model(row) for row in (await self.session.execute(query)).scalars()]

    async def interrupt_active(self) -> int:
        """At start: the jobs a previous process left active (their tasks are gone) get
        :meth:`interrupted_values`, their parts :meth:`interrupt_parts`; how many."""
        ids = list(
            (
                await self.session.execute(select(self.column("id")).where(self.is_active()))
            ).scalars()
        )
        if ids:
            await self.interrupt_parts(ids)
            await self.session.execute(
                update(self.row).where(self.column("id").in_(ids)).values(self.interrupted_values())
            )
        return len(ids)

    async def interrupt_parts(self, ids: Sequence[Any]) -> None:
        """What else an interrupted job leaves behind (its files in transfer …); nothing here,
        often :meth:`fail_parts`."""

    async def fail_parts(
        self, job: InstrumentedAttribute[Any], ids: Sequence[Any], *, active: str, error: str
    ) -> None:
        """The parts of the jobs ``ids`` (rows whose column ``job`` names one) still in state
        ``active`` become ``failed`` with ``error``."""
        part = job.class_
        await self.session.execute(
            update(part)
            .where(job.in_(ids), part.state == active)
            .values(state="failed", error=error)
        )

    async def set_part(
        self,
        job: InstrumentedAttribute[Any],
        job_id: Any,
        position: int,
        *,
        state: str | None = None,
        error: str | None = None,
        **values: Any,
    ) -> None:
        """Record one part of a job (the row whose column ``job`` is ``job_id`` at
        ``position``): a ``state`` comes with its ``error`` (None clears it); other values
        that are None are left as they are."""
        changes = {name: value for name, value in values.items() if value is not None}
        if state is not None:
            changes |= {"state": state, "error": error}
        if changes:
            part = job.class_
            await self.session.execute(
                update(part).where(job == job_id, part.position == position).values(**changes)
            )


__all__ = ["Job", "JobStore", "JobSupervisor"]
