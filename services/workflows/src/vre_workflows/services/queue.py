"""RunManager: the run queue. Accepted runs wait for a slot of their backend (FIFO), then are
carried to their end through the backend port: prepare → stage inputs → submit → watch →
collect → register outputs.

Limits: each backend carries ``slots`` runs at once, and at most ``slots_per_project`` of one
project (or of one user's personal runs). Cancellation drops a waiting run or tells the
backend to stop. On start, runs a previous process left active are picked up again when their
backend keeps them running while the service is away (Slurm), and recorded as interrupted
otherwise; on stop, such runs stay active for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from vre_common.crypto import TokenCipher
from vre_common.errors import VreError
from vre_common.metrics import RUNS
from vre_workflows.backends.base import (
    BackendRegistry,
    ExecutionOutcome,
    RunJob,
    StepPlan,
    WorkflowBackend,
)
from vre_workflows.models import ACTIVE_STATUSES, Run
from vre_workflows.services.outputs import OutputRegistrar
from vre_workflows.services.provenance import RunEvents
from vre_workflows.services.run_state import RunStateMachine, error_of, problem
from vre_workflows.services.staging import InputStager
from vre_workflows.spec import serial_steps
from vre_workflows.storage.runs import RunStore, StoredStep
from vre_workflows.workspace import RunPaths

log = structlog.get_logger("vre.workflows.queue")

TICKET_FILE = "ticket.enc"


@dataclass
class Ticket:
    """What a run needs that its record does not hold: secrets and replica hints.

    The submitter's token (to stage inputs and register outputs) and a backend credential
    (REANA's token) live in memory; for backends whose runs outlive the service the token
    is also kept encrypted in the run's folder, so a restarted service can finish the run.
    """

    run_id: str
    backend: str
    token: str | None
    credential: str | None = None
    replicas: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    group: str = ""
    """Whose slots the run uses: ``project:<slug>``, or ``user:<key>`` for a personal run."""


class TicketVault:
    """Tokens of runs that outlive the service, encrypted with the service's key."""

    def __init__(self, cipher: TokenCipher, data_dir: Path) -> None:
        self._cipher = cipher
        self._data_dir = data_dir

    def _path(self, run_id: str) -> Path:
        return RunPaths.of(self._data_dir, run_id).root / TICKET_FILE

    def keep(self, ticket: Ticket) -> None:
        """Write the ticket's token (0600)."""
        if ticket.token is None:
            return
        path = self._path(ticket.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self._cipher.encrypt(json.dumps({"token": ticket.token}))
        path.touch(mode=0o600)
        path.write_text(data, encoding="ascii")

    def read(self, run_id: str, backend: str, group: str) -> Ticket:
        """The ticket kept for a run (without a token if none was kept or it cannot be read)."""
        try:
            text = self._path(run_id).read_text(encoding="ascii")
        except OSError:
            return Ticket(run_id=run_id, backend=backend, token=None, group=group)
        plain = self._cipher.decrypt_or_none(text)
        token = json.loads(plain).get("token") if plain else None
        return Ticket(run_id=run_id, backend=backend, token=token, group=group)

    def drop(self, run_id: str) -> None:
        """Forget the token once the run has ended."""
        self._path(run_id).unlink(missing_ok=True)


class _Active:
    def __init__(self, ticket: Ticket, *, resumed: bool = False) -> None:
        self.ticket = ticket
        self.resumed = resumed
        self.cancel = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.job: RunJob | None = None
        self.backend: WorkflowBackend | None = None
        self.done = asyncio.Event()


class RunManager:
    """Queues accepted runs and carries each one to its end (see the module docstring)."""

    def __init__(
        self,
        *,
        state: RunStateMachine,
        backends: BackendRegistry,
        stager: InputStager,
        outputs: OutputRegistrar,
        vault: TicketVault,
        data_dir: Path,
    ) -> None:
        self.state = state
        self.db = state.db
        self.events: RunEvents = state.events
        self._backends = backends
        self._stager = stager
        self._outputs = outputs
        self._vault = vault
        self._data_dir = data_dir
        self._waiting: dict[str, _Active] = {}
        self._active: dict[str, _Active] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._group_slots: dict[tuple[str, str], asyncio.Semaphore] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self.max_concurrent_seen = 0

    def paths(self, run_id: str) -> RunPaths:
        """The run's folders."""
        return RunPaths.of(self._data_dir, run_id)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Pick up runs a previous process left active, or record them as interrupted."""
        async with self.db.transaction() as session:
            left = await RunStore(session).active_run_ids()
        leftovers: dict[str, set[str]] = {}
        for run_id, name in left:
            run = await self.state.load(run_id)
            if run is None:
                continue
            backend = self._backends.find(name)
            if backend is not None and backend.survives_restart:
                async with self.db.transaction() as session:
                    owned = await RunStore(session).ownership(run_id)
                group = slot_group(owned[0] if owned else run_id, run.project)
                ticket = await asyncio.to_thread(self._vault.read, run_id, name, group)
                log.info("run_picked_up", run_id=run_id, backend=name, status=run.status)
                # Picked up where the backend holds it: started, or already handed over
                # (backend ids recorded); a run that never got there starts from staging.
                resumed = run.status == "running" or bool(run.backend_ids)
                self._launch(_Active(ticket, resumed=resumed))
                continue
            detail = (
                backend.interrupted_detail(run)
                if backend is not None
                else f"the workflows service restarted while the run was {run.status}; the "
                f"backend {name!r} is no longer configured"
            )
            await self.state.interrupted(run_id, name, detail)
            leftovers.setdefault(name, set()).add(run_id)
        for name, ids in leftovers.items():
            backend = self._backends.find(name)
            if backend is not None:
                await backend.clean_up(ids)

    async def stop(self) -> None:
        """Stop carrying runs: those whose backend keeps them going stay active for the next
        start; the others are stopped and recorded as interrupted."""
        everything = {**self._waiting, **self._active}
        tasks = [a.task for a in everything.values() if a.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for run_id, active in everything.items():
            backend = self._backends.find(active.ticket.backend)
            if backend is not None and backend.survives_restart:
                continue
            await self.state.interrupted(
                run_id,
                active.ticket.backend,
                "the workflows service stopped while the run was active",
            )
        self._active.clear()
        self._waiting.clear()

    # ------------------------------------------------------------------ submission

    def enqueue(self, ticket: Ticket) -> None:
        """Accept a committed run: it waits for a slot of its backend."""
        backend = self._backends.find(ticket.backend)
        if backend is not None and backend.survives_restart:
            self._vault.keep(ticket)
        RUNS.labels(ticket.backend, "queued").inc()
        self._launch(_Active(ticket))

    def _launch(self, active: _Active) -> None:
        self._waiting[active.ticket.run_id] = active
        active.task = asyncio.create_task(
            self._lifecycle(active), name=f"run-{active.ticket.run_id[:8]}"
        )

    def queued_ids(self) -> list[str]:
        """Runs waiting for a slot, in order."""
        return list(self._waiting)

    async def cancel(self, run_id: str, *, wait: float = 30.0) -> bool:
        """Cancel a run this process knows; True if it was queued or running here.

        A waiting run is dropped from the queue; a running one is stopped by its backend.
        Waits up to ``wait`` seconds for the run to settle.
        """
        waiting = self._waiting.pop(run_id, None)
        if waiting is not None:
            if waiting.task is not None:
                waiting.task.cancel()
            await self.state.cancelled(run_id, waiting.ticket.backend, "cancelled while queued")
            self._vault.drop(run_id)
            return True
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancel.set()
        if active.job is not None:
            active.job.cancel.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await active.done.wait()
        return True

    async def cancel_elsewhere(self, run: Run) -> None:
        """Stop on its backend a run this process does not carry (left by another process)
        where the backend keeps runs going on its own (Slurm's jobs)."""
        backend = self._backends.find(run.backend)
        if backend is None or not backend.survives_restart:
            return
        job = await self._job(run, _Active(Ticket(run_id=run.id, backend=run.backend, token=None)))
        with contextlib.suppress(VreError):
            await backend.cancel(job)

    async def wait_idle(self, run_id: str, within: float = 60.0) -> None:
        """Tests and shutdown: wait until a run is no longer handled here."""
        active = self._active.get(run_id) or self._waiting.get(run_id)
        if active is None:
            return
        async with asyncio.timeout(within):
            await active.done.wait()

    def is_handled(self, run_id: str) -> bool:
        """True while this process queues or carries the run."""
        return run_id in self._active or run_id in self._waiting

    async def remove_files(self, run_id: str) -> None:
        """Delete a run's folders."""
        await asyncio.to_thread(shutil.rmtree, self.paths(run_id).root, True)

    # ------------------------------------------------------------------ carrying a run

    @contextlib.asynccontextmanager
    async def _slot(self, backend: WorkflowBackend, group: str) -> AsyncIterator[None]:
        total = self._slots.setdefault(backend.name, asyncio.Semaphore(backend.slots))
        if backend.slots_per_project is None:
            async with total:
                yield
            return
        mine = self._group_slots.setdefault(
            (backend.name, group), asyncio.Semaphore(backend.slots_per_project)
        )
        async with mine, total:
            yield

    async def _lifecycle(self, active: _Active) -> None:
        run_id = active.ticket.run_id
        name = active.ticket.backend
        shutting_down = False
        try:
            backend = self._backends.get(name)
            active.backend = backend
            # No await before the slot: runs wait for it in the order they were accepted.
            async with self._slot(backend, active.ticket.group or run_id):
                if self._waiting.pop(run_id, None) is None:
                    return  # cancelled while queued
                self._active[run_id] = active
                self.max_concurrent_seen = max(self.max_concurrent_seen, len(self._active))
                await self._carry(active, backend)
        except asyncio.CancelledError:
            shutting_down = True
            raise
        except VreError as exc:
            await self.state.failed(run_id, name, error_of(exc))
        except Exception as exc:
            log.exception("run_crashed", run_id=run_id, error=type(exc).__name__)
            await self.state.failed(
                run_id,
                name,
                problem(
                    "Internal error",
                    f"the run failed unexpectedly ({type(exc).__name__})",
                    "internal-error",
                    500,
                ),
            )
        finally:
            self._active.pop(run_id, None)
            self._waiting.pop(run_id, None)
            if not shutting_down:
                self._vault.drop(run_id)
            active.done.set()

    async def _job(self, run: Run, active: _Active) -> RunJob:
        async with self.db.transaction() as session:
            store = RunStore(session)
            spec = await store.spec(run.id) or {}
            stored = await store.stored_steps(run.id)
            owned = await store.ownership(run.id)
        return RunJob(
            run_id=run.id,
            owner=owned[0] if owned else "",
            project=run.project,
            workflow_type=run.workflow_type,
            spec=spec,
            parameters=run.parameters,
            paths=self.paths(run.id),
            steps=step_plans(stored, spec),
            backend_ids=dict(run.backend_ids),
            server=run.reana_server,
            credential=active.ticket.credential,
            cancel=active.cancel,
            resumed=active.resumed,
        )

    async def _carry(self, active: _Active, backend: WorkflowBackend) -> None:
        ticket = active.ticket
        # Runs that got their slots one after the other start in that order (FIFO lock).
        async with self._starting.setdefault(backend.name, asyncio.Lock()):
            run = await self.state.load(ticket.run_id)
            if run is None or run.status not in ACTIVE_STATUSES:
                return
            job = await self._job(run, active)
            active.job = job
            reporter = self.state.recorder(run.id, backend.name)
            if not job.resumed:
                await backend.prepare(job, reporter)
        if not job.resumed:
            if not active.cancel.is_set():
                staged = await self._stager.stage(
                    run, job.paths, token=ticket.token, replicas=ticket.replicas
                )
                async with self.db.transaction() as session:
                    await RunStore(session).set_inputs(run.id, staged)
            if not active.cancel.is_set():
                await backend.submit(job, reporter)
            if active.cancel.is_set():
                await backend.cancel(job)
                await self.state.cancelled(run.id, backend.name, "cancelled by the user")
                return
        outcome = await backend.watch(job, reporter)
        if outcome.status == "cancelled":
            await self.state.cancelled(
                run.id, backend.name, outcome.message or "cancelled by the user"
            )
            return
        if outcome.status == "finished":
            await backend.collect(job)
        await self._conclude(run.id, backend.name, job, ticket.token, outcome)

    async def _conclude(
        self,
        run_id: str,
        backend: str,
        job: RunJob,
        token: str | None,
        outcome: ExecutionOutcome,
    ) -> None:
        """Collect outputs, register them, and set the final status."""
        run = await self.state.load(run_id)
        assert run is not None
        if outcome.status != "finished":
            if run.register_partial_outputs and run.destination is not None:
                outputs = await self._outputs.collect(job.spec, job.paths, strict=False)
                await self._outputs.record(run_id, outputs)
                with contextlib.suppress(VreError):
                    await self._outputs.register(run, run.destination, outputs, token)
            error = outcome.error or {}
            await self.state.failed(
                run_id,
                backend,
                problem(
                    str(error.get("title") or "Run failed"),
                    str(error.get("detail") or outcome.message or "a step failed"),
                ),
            )
            return
        outputs = await self._outputs.collect(job.spec, job.paths, strict=True)
        await self._outputs.record(run_id, outputs)
        if run.destination is not None and outputs:
            await self._outputs.register(run, run.destination, outputs, token)
        await self.state.finished(run_id, backend, f"{len(outputs)} output file(s)")


def slot_group(owner: str, project: str | None) -> str:
    """Whose slots a run uses: its project's, or its owner's personal ones."""
    return f"project:{project}" if project else f"user:{owner}"


def step_plans(stored: list[StoredStep], spec: dict[str, Any]) -> list[StepPlan]:
    """The planned steps of a run, from its record and its specification's step fields."""
    raw = serial_steps(spec)
    plans = []
    for step in stored:
        options = raw[step.position] if step.position < len(raw) else {}
        uid = options.get("kubernetes_uid")
        plans.append(
            StepPlan(
                position=step.position,
                name=step.name,
                commands=step.commands,
                execution=step.execution or "host",  # type: ignore[arg-type]
                image=step.image,
                timeout_seconds=step.timeout_seconds or 86400.0,
                memory_limit=step.memory_limit,
                user=str(uid) if isinstance(uid, int) else None,
                options=dict(options),
                status=step.status,
            )
        )
    return plans
