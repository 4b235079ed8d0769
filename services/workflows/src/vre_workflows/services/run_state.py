"""The run state machine: queued → running → finished | failed | cancelled (| interrupted).

Every transition is one short unit of work that also records the history entry, the metric
and, for start and end, the provenance event. ``RunRecorder`` is what backends report to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from vre_common.db import Database, utcnow
from vre_common.errors import VreError
from vre_common.metrics import RUNS
from vre_common.provenance.events import EventKind
from vre_workflows.models import Run, RunStatus, Step
from vre_workflows.services.provenance import RunEvents
from vre_workflows.storage.runs import RunStore

log = structlog.get_logger("vre.workflows.runs")


def problem(title: str, detail: str, slug: str = "run-failed", status: int = 422) -> dict[str, Any]:
    """A problem-shaped error recorded on a failed run."""
    return {
        "type": f"https://vre.example.org/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }


def error_of(exc: VreError) -> dict[str, Any]:
    """The problem recorded for one of our errors."""
    return problem(exc.title, exc.detail, exc.slug, exc.status)


class RunStateMachine:
    """Moves runs between states; a transition that does not apply (already ended) is a no-op."""

    def __init__(self, *, db: Database, events: RunEvents) -> None:
        self.db = db
        self.events = events

    async def load(self, run_id: str) -> Run | None:
        """The run's record."""
        async with self.db.transaction() as session:
            return await RunStore(session).get(run_id)

    async def spec(self, run_id: str) -> dict[str, Any]:
        """The run's stored specification."""
        async with self.db.transaction() as session:
            spec = await RunStore(session).spec(run_id)
        return spec or {}

    async def running(self, run_id: str, backend: str) -> bool:
        """queued → running; False if the run is not queued any more."""
        async with self.db.transaction() as session:
            changed = await RunStore(session).set_status(
                run_id, "running", detail="started", only_from=["queued"]
            )
            if changed:
                await self.events.record(session, run_id, EventKind.RUN_STARTED)
        if changed:
            self.events.wake()
            RUNS.labels(backend, "running").inc()
            log.info("run_started", run_id=run_id)
        return changed

    async def failed(self, run_id: str, backend: str, error: dict[str, Any]) -> None:
        """→ failed, with the problem that says why."""
        async with self.db.transaction() as session:
            store = RunStore(session)
            if await store.set_status(
                run_id,
                "failed",
                detail=str(error.get("detail")),
                error=error,
                only_from=["queued", "running"],
            ):
                await store.finish_pending_steps(run_id, "failed")
                await self.events.record(session, run_id, EventKind.RUN_FINISHED)
                RUNS.labels(backend, "failed").inc()
                log.info("run_failed", run_id=run_id, reason=str(error.get("detail"))[:300])
        self.events.wake()

    async def cancelled(self, run_id: str, backend: str, detail: str) -> None:
        """→ cancelled; steps that had not ended are marked so."""
        async with self.db.transaction() as session:
            store = RunStore(session)
            changed = await store.set_status(
                run_id, "cancelled", detail=detail, only_from=["queued", "running"]
            )
            if changed:
                await self.events.record(session, run_id, EventKind.RUN_FINISHED)
            await store.finish_pending_steps(run_id, "cancelled")
        self.events.wake()
        if changed:
            RUNS.labels(backend, "cancelled").inc()
            log.info("run_cancelled", run_id=run_id)

    async def finished(self, run_id: str, backend: str, detail: str) -> None:
        """running → finished."""
        async with self.db.transaction() as session:
            changed = await RunStore(session).set_status(
                run_id, "finished", detail=detail, only_from=["running", "queued"]
            )
            if changed:
                await self.events.record(session, run_id, EventKind.RUN_FINISHED)
        self.events.wake()
        if changed:
            RUNS.labels(backend, "finished").inc()
            log.info("run_finished", run_id=run_id, detail=detail)

    async def interrupted(self, run_id: str, backend: str, detail: str) -> None:
        """A run this process cannot carry on (restart, shutdown)."""
        async with self.db.transaction() as session:
            if await RunStore(session).mark_interrupted(run_id, detail):
                RUNS.labels(backend, "interrupted").inc()
                log.info("run_interrupted", run_id=run_id, detail=detail)

    async def warn(self, run_id: str, text: str) -> None:
        """Append a warning to the run."""
        async with self.db.transaction() as session:
            await RunStore(session).add_warning(run_id, text)

    def recorder(self, run_id: str, backend: str) -> RunRecorder:
        """What a backend reports to while it carries ``run_id``."""
        return RunRecorder(self, run_id, backend)


class RunRecorder:
    """Records a backend's reports on one run (implements ``RunReporter``)."""

    def __init__(self, machine: RunStateMachine, run_id: str, backend: str) -> None:
        self._machine = machine
        self._run_id = run_id
        self._backend = backend

    async def running(self) -> bool:
        """The run started on its backend."""
        return await self._machine.running(self._run_id, self._backend)

    async def step_started(self, position: int) -> None:
        """A step started."""
        async with self._machine.db.transaction() as session:
            await RunStore(session).update_step(
                self._run_id, position, status="running", started_at=utcnow()
            )

    async def step_finished(
        self, position: int, status: str, exit_code: int | None, message: str | None
    ) -> None:
        """A step ended."""
        async with self._machine.db.transaction() as session:
            await RunStore(session).update_step(
                self._run_id,
                position,
                status=status,
                exit_code=exit_code,
                message=message,
                finished_at=utcnow(),
            )

    async def steps_seen(self, steps: Sequence[Step]) -> None:
        """The backend's own step list replaces the planned one."""
        async with self._machine.db.transaction() as session:
            await RunStore(session).replace_steps(self._run_id, steps)

    async def backend_ids(self, ids: dict[str, str]) -> None:
        """Identifiers on the backend, merged into the run's record."""
        async with self._machine.db.transaction() as session:
            store = RunStore(session)
            run = await store.get(self._run_id)
            if run is not None:
                await store.update_run(self._run_id, backend_ids={**run.backend_ids, **ids})

    async def warning(self, text: str) -> None:
        """A warning on the run."""
        await self._machine.warn(self._run_id, text)


TERMINAL: tuple[RunStatus, ...] = ("finished", "failed", "cancelled", "interrupted", "deleted")
