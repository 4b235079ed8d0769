"""RunStore: every query on runs, their history, steps, inputs and outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import selectinload

from vre_common.db import utcnow
from vre_common.jobs import JobStore
from vre_workflows.models import (
    InputRef,
    OutputDestination,
    Progress,
    Run,
    RunInput,
    RunOutput,
    RunStatus,
    RunSummary,
    StatusChange,
    Step,
)
from vre_workflows.storage.schema import (
    RunEventRow,
    RunInputRow,
    RunOutputRow,
    RunRow,
    RunStepRow,
)


@dataclass
class NewStep:
    """A step as planned at submission."""

    name: str
    commands: list[str] = field(default_factory=list)
    image: str | None = None
    execution: str | None = None
    timeout_seconds: float | None = None
    memory_limit: str | None = None
    message: str | None = None


@dataclass
class NewRun:
    """Everything recorded when a run is accepted."""

    id: str
    owner: str
    owner_name: str
    name: str
    backend: str
    workflow_type: str
    spec: dict[str, Any]
    spec_sha256: str
    parameters: dict[str, Any]
    images: list[str]
    steps: list[NewStep]
    inputs: list[RunInput]
    requested_inputs: list[InputRef] = field(default_factory=list)
    destination: OutputDestination | None = None
    register_partial_outputs: bool = False
    reana_server: str | None = None
    backend_ids: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rerun_of: str | None = None
    project: str | None = None


@dataclass
class StoredStep:
    """A step's planned execution as recorded (what a backend needs to run it again)."""

    position: int
    name: str
    status: str
    commands: list[str]
    image: str | None
    execution: str | None
    timeout_seconds: float | None
    memory_limit: str | None


@dataclass
class RunFacts:
    """What a provenance event says about a run."""

    owner: str
    owner_name: str
    project: str | None
    name: str
    status: str
    backend: str
    workflow_type: str
    spec_sha256: str
    input_dids: list[str]
    output_dids: list[str]
    output_dataset: str | None


def _progress(steps: Sequence[RunStepRow]) -> Progress:
    return Progress(
        total=len(steps),
        finished=sum(1 for s in steps if s.status == "finished"),
        running=sum(1 for s in steps if s.status == "running"),
        failed=sum(1 for s in steps if s.status == "failed"),
    )


def _summary(row: RunRow, steps: Sequence[RunStepRow]) -> RunSummary:
    return RunSummary(
        id=row.id,
        name=row.name,
        status=row.status,
        backend=row.backend,
        workflow_type=row.workflow_type,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        progress=_progress(steps),
    )


def _run(row: RunRow) -> Run:
    summary = _summary(row, row.steps)
    return Run(
        **summary.model_dump(),
        owner=row.owner_name,
        project=row.project,
        reana_server=row.reana_server,
        spec_sha256=row.spec_sha256,
        parameters=row.parameters,
        images=row.images,
        requested_inputs=[InputRef(**r) for r in row.requested_inputs],
        # their columns are the models' fields
        inputs=[RunInput.model_validate(i, from_attributes=True) for i in row.inputs],
        outputs=[RunOutput.model_validate(o, from_attributes=True) for o in row.outputs],
        steps=[
            Step(
                index=s.position,
                name=s.name,
                status=s.status,
                image=s.image,
                execution=s.execution,
                exit_code=s.exit_code,
                started_at=s.started_at,
                finished_at=s.finished_at,
                message=s.message,
                commands=s.commands,
            )
            for s in row.steps
        ],
        history=[StatusChange(status=e.status, at=e.at, detail=e.detail) for e in row.events],
        backend_ids=row.backend_ids,
        destination=OutputDestination(**row.destination) if row.destination else None,
        output_dataset=row.output_dataset,
        provenance_did=row.provenance_did,
        register_partial_outputs=row.register_partial_outputs,
        warnings=row.warnings,
        error=row.error,
        rerun_of=row.rerun_of,
        workspace_removed=row.workspace_removed,
    )


_FULL = (
    selectinload(RunRow.events),
    selectinload(RunRow.steps),
    selectinload(RunRow.inputs),
    selectinload(RunRow.outputs),
)


class RunStore(JobStore[RunRow, Run]):
    """Runs in SQL; returns pydantic models. Never commits (the caller's unit of work does).
    A run left active by a previous process is picked up or interrupted one by one by the
    run manager (:meth:`mark_interrupted`), not in bulk."""

    row = RunRow
    state_column = "status"
    load = _FULL

    def to_model(self, row: RunRow) -> Run:
        return _run(row)

    async def create(self, new: NewRun) -> Run:
        """Record an accepted run (status queued)."""
        now = utcnow()
        row = RunRow(
            id=new.id,
            owner=new.owner,
            owner_name=new.owner_name,
            project=new.project,
            name=new.name,
            status="queued",
            backend=new.backend,
            reana_server=new.reana_server,
            workflow_type=new.workflow_type,
            spec=new.spec,
            spec_sha256=new.spec_sha256,
            parameters=new.parameters,
            images=new.images,
            requested_inputs=[r.model_dump() for r in new.requested_inputs],
            destination=new.destination.model_dump() if new.destination else None,
            register_partial_outputs=new.register_partial_outputs,
            backend_ids=dict(new.backend_ids),
            warnings=list(new.warnings),
            error=None,
            rerun_of=new.rerun_of,
            workspace_removed=False,
            created_at=now,
            updated_at=now,
        )
        row.events = [RunEventRow(status="queued", at=now, detail="accepted")]
        row.steps = [
            RunStepRow(
                position=i,
                name=s.name,
                status="pending",
                image=s.image,
                execution=s.execution,
                commands=s.commands,
                timeout_seconds=s.timeout_seconds,
                memory_limit=s.memory_limit,
                message=s.message,
            )
            for i, s in enumerate(new.steps)
        ]
        row.inputs = [
            RunInputRow(position=i, **inp.model_dump()) for i, inp in enumerate(new.inputs)
        ]
        row.outputs = []
        self.session.add(row)
        await self.session.flush()
        return _run(row)

    async def ownership(self, run_id: str) -> tuple[str, str | None] | None:
        """(owner key, project) of a run; None if there is no such run."""
        result = await self.session.execute(
            select(RunRow.owner, RunRow.project).where(RunRow.id == run_id)
        )
        row = result.one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def facts(self, run_id: str) -> RunFacts | None:
        """The facts a provenance event records (inputs and registered outputs as DIDs)."""
        row = await self.one_row(run_id)
        if row is None:
            return None
        return RunFacts(
            owner=row.owner,
            owner_name=row.owner_name,
            project=row.project,
            name=row.name,
            status=row.status,
            backend=row.backend,
            workflow_type=row.workflow_type,
            spec_sha256=row.spec_sha256,
            input_dids=[i.did for i in row.inputs if i.kind == "did" and i.did],
            output_dids=[o.did for o in row.outputs if o.did],
            output_dataset=row.output_dataset,
        )

    async def spec(self, run_id: str) -> dict[str, Any] | None:
        """The stored specification of a run."""
        result = await self.session.execute(select(RunRow.spec).where(RunRow.id == run_id))
        return result.scalar_one_or_none()

    async def status_of(self, run_id: str) -> str | None:
        """Just the status (cheap: log followers poll it)."""
        result = await self.session.execute(select(RunRow.status).where(RunRow.id == run_id))
        return result.scalar_one_or_none()

    async def step_states(self, run_id: str) -> list[tuple[int, str, str]]:
        """(position, name, status) of each step, in order."""
        result = await self.session.execute(
            select(RunStepRow.position, RunStepRow.name, RunStepRow.status)
            .where(RunStepRow.run_id == run_id)
            .order_by(RunStepRow.position)
        )
        return [(p, n, s) for p, n, s in result.all()]

    async def stored_steps(self, run_id: str) -> list[StoredStep]:
        """The run's steps as planned, in order."""
        result = await self.session.execute(
            select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.position)
        )
        return [
            StoredStep(
                position=row.position,
                name=row.name,
                status=row.status,
                commands=list(row.commands),
                image=row.image,
                execution=row.execution,
                timeout_seconds=row.timeout_seconds,
                memory_limit=row.memory_limit,
            )
            for row in result.scalars()
        ]

    async def list_runs(
        self,
        owner: str | None,
        *,
        project: str | None = None,
        status: Sequence[str] = (),
        name: str | None = None,
        page: int = 1,
        size: int = 50,
    ) -> tuple[list[RunSummary], int]:
        """The owner's (or the project's) runs, newest first; deleted ones only when asked."""
        where: list[ColumnElement[bool]] = []
        if owner is not None:
            where.append(RunRow.owner == owner)
        if project is not None:
            where.append(RunRow.project == project)
        if status:
            where.append(RunRow.status.in_(list(status)))
        else:
            where.append(RunRow.status != "deleted")
        if name:
            where.append(RunRow.name == name)
        total = (
            await self.session.execute(select(func.count()).select_from(RunRow).where(*where))
        ).scalar_one()
        result = await self.session.execute(
            select(RunRow)
            .where(*where)
            .options(selectinload(RunRow.steps))
            .order_by(RunRow.created_at.desc(), RunRow.id.desc())
            .offset((page - 1) * size)
            .limit(size)
        )
        return [_summary(r, r.steps) for r in result.scalars()], int(total)

    async def set_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        detail: str | None = None,
        error: dict[str, Any] | None = None,
        only_from: Sequence[str] | None = None,
    ) -> bool:
        """Change the status and record it in the history; False if ``only_from`` excluded it."""
        now = utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "running":
            values["started_at"] = now
        if status in ("finished", "failed", "cancelled", "interrupted"):
            values["finished_at"] = now
        if error is not None:
            values["error"] = error
        query = update(RunRow).where(RunRow.id == run_id)
        if only_from is not None:
            query = query.where(RunRow.status.in_(list(only_from)))
        result = await self.session.execute(query.values(**values))
        if not getattr(result, "rowcount", 0):
            return False
        self.session.add(RunEventRow(run_id=run_id, status=status, at=now, detail=detail))
        await self.session.flush()
        return True

    async def update_run(self, run_id: str, **values: Any) -> None:
        """Set plain columns (backend_ids, warnings, output_dataset, workspace_removed …)."""
        values["updated_at"] = utcnow()
        await self.session.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    async def add_warning(self, run_id: str, warning: str) -> None:
        """Append one warning to the run."""
        row = await self.session.get(RunRow, run_id)
        if row is not None:
            row.warnings = [*row.warnings, warning]
            await self.session.flush()

    async def update_step(self, run_id: str, position: int, **values: Any) -> None:
        """Set a step's columns (status, exit_code, started_at, …)."""
        await self.session.execute(
            update(RunStepRow)
            .where(RunStepRow.run_id == run_id, RunStepRow.position == position)
            .values(**values)
        )

    async def finish_pending_steps(self, run_id: str, status: str) -> None:
        """Mark steps that never ran (pending) or were cut short (running)."""
        now = utcnow()
        await self.session.execute(
            update(RunStepRow)
            .where(RunStepRow.run_id == run_id, RunStepRow.status == "running")
            .values(status=status, finished_at=now)
        )
        await self.session.execute(
            update(RunStepRow)
            .where(RunStepRow.run_id == run_id, RunStepRow.status == "pending")
            .values(status="skipped")
        )

    async def replace_steps(self, run_id: str, steps: Sequence[Step]) -> None:
        """Replace the step list (a REANA run's jobs become known while it runs)."""
        existing = {
            s.position: s
            for s in (
                await self.session.execute(select(RunStepRow).where(RunStepRow.run_id == run_id))
            ).scalars()
        }
        for step in steps:
            row = existing.pop(step.index, None)
            if row is None:
                row = RunStepRow(run_id=run_id, position=step.index, commands=[])
                self.session.add(row)
            row.name = step.name
            row.status = step.status
            row.image = step.image
            row.execution = step.execution
            row.exit_code = step.exit_code
            row.started_at = step.started_at
            row.finished_at = step.finished_at
            row.message = step.message
            row.commands = step.commands
        for row in existing.values():
            await self.session.delete(row)
        await self.session.flush()

    async def set_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        """Replace the run's input records (after staging, with checksums and how)."""
        rows = (
            await self.session.execute(select(RunInputRow).where(RunInputRow.run_id == run_id))
        ).scalars()
        for row in rows:
            await self.session.delete(row)
        for i, inp in enumerate(inputs):
            self.session.add(RunInputRow(run_id=run_id, position=i, **inp.model_dump()))
        await self.session.flush()

    async def set_outputs(self, run_id: str, outputs: Sequence[RunOutput]) -> None:
        """Record (or update) the outputs the run produced."""
        existing = {
            o.path: o
            for o in (
                await self.session.execute(
                    select(RunOutputRow).where(RunOutputRow.run_id == run_id)
                )
            ).scalars()
        }
        for out in outputs:
            row = existing.get(out.path)
            if row is None:
                row = RunOutputRow(run_id=run_id, path=out.path)
                self.session.add(row)
            row.bytes = out.bytes
            row.adler32 = out.adler32
            row.md5 = out.md5
            row.did = out.did
            row.registered_at = out.registered_at
        await self.session.flush()

    async def active_run_ids(self) -> list[tuple[str, str]]:
        """(id, backend) of runs left queued or running."""
        result = await self.session.execute(
            select(RunRow.id, RunRow.backend).where(self.is_active())
        )
        return [(i, b) for i, b in result.all()]

    async def mark_interrupted(self, run_id: str, detail: str) -> bool:
        """A run left active by a previous process: interrupted, its running step too."""
        if await self.set_status(
            run_id, "interrupted", detail=detail, only_from=["queued", "running"]
        ):
            await self.finish_pending_steps(run_id, "interrupted")
            return True
        return False

    async def now(self) -> datetime:
        """The time the store stamps with (for callers recording their own)."""
        return utcnow()
