"""RunManager: queues accepted runs and carries each one to its end, on either backend.

Local runs wait in one FIFO queue served by ``max_concurrent_runs`` workers. REANA runs are
monitored by one task each (bounded by ``reana.max_active_runs``). Both stage Data Lake inputs
into the run's workspace first and register declared outputs in the Data Lake after success;
a failed or cancelled run registers nothing (unless the run asked for partial outputs).
Every state change is written through its own short unit of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog

from vre_common.db import Database, utcnow
from vre_common.errors import BackendError, InvalidInputError, VreError
from vre_common.metrics import RUNS
from vre_common.provenance import EventKind
from vre_workflows.backends.base import DatalakePort, LocalJob, ResolvedInput, StepPlan
from vre_workflows.backends.local import LocalWorkflowBackend
from vre_workflows.backends.process import kill_leftovers
from vre_workflows.backends.reana import REANA_STATUS, ReanaClient
from vre_workflows.config import WorkflowsSettings
from vre_workflows.models import OutputDestination, Run, RunInput, RunOutput, Step
from vre_workflows.services.provenance import RunEvents
from vre_workflows.spec import declared_outputs
from vre_workflows.storage.runs import RunStore
from vre_workflows.workspace import RunPaths, digest_file, inside, link_or_copy

log = structlog.get_logger("vre.workflows.executor")


@dataclass
class StagedInput:
    """A Data Lake file and where it goes in the workspace."""

    source: ResolvedInput
    path: str


@dataclass
class Submission:
    """What the executor needs in memory for one run (tokens never reach the database)."""

    run_id: str
    backend: str
    owner: str
    token: str | None
    workflow_type: str
    spec: dict[str, Any]
    parameters: dict[str, Any]
    parameter_overrides: dict[str, Any]
    did_inputs: list[StagedInput] = field(default_factory=list)
    steps: list[StepPlan] = field(default_factory=list)
    reana_server: str | None = None
    reana_token: str | None = None
    reana_workflow_id: str | None = None


class _Active:
    def __init__(self, submission: Submission) -> None:
        self.submission = submission
        self.cancel = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()


class OutputsMissingError(VreError):
    """Declared outputs were not produced."""

    status = 422
    slug = "outputs-missing"
    title = "Declared outputs missing"


class _Reporter:
    def __init__(self, manager: RunManager, run_id: str) -> None:
        self._manager = manager
        self._run_id = run_id

    async def step_started(self, position: int) -> None:
        async with self._manager.db.transaction() as session:
            await RunStore(session).update_step(
                self._run_id, position, status="running", started_at=utcnow()
            )

    async def step_finished(
        self, position: int, status: str, exit_code: int | None, message: str | None
    ) -> None:
        async with self._manager.db.transaction() as session:
            await RunStore(session).update_step(
                self._run_id,
                position,
                status=status,
                exit_code=exit_code,
                message=message,
                finished_at=utcnow(),
            )


def problem(title: str, detail: str, slug: str = "run-failed", status: int = 422) -> dict[str, Any]:
    """A problem-shaped error recorded on a failed run."""
    return {
        "type": f"https://vre.example.org/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }


def _error_of(exc: VreError) -> dict[str, Any]:
    return problem(exc.title, exc.detail, exc.slug, exc.status)


class RunManager:
    """Runs accepted submissions in the background (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        settings: WorkflowsSettings,
        local: LocalWorkflowBackend,
        reana: dict[str, ReanaClient],
        datalake: DatalakePort,
        events: RunEvents,
    ) -> None:
        self.db = db
        self.events = events
        self._settings = settings
        self._local = local
        self._reana = reana
        self._datalake = datalake
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: dict[str, _Active] = {}
        self._active: dict[str, _Active] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._reana_slots = asyncio.Semaphore(settings.reana.max_active_runs)
        self._started = False
        self.max_concurrent_seen = 0

    def _count(self, run_id: str, status: str) -> None:
        active = self._active.get(run_id) or self._waiting.get(run_id)
        RUNS.labels(active.submission.backend if active else "local", status).inc()

    def paths(self, run_id: str) -> RunPaths:
        """The run's folders."""
        return RunPaths.of(self._settings.data_dir, run_id)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Mark runs a previous process left active as interrupted; start the workers."""
        leftovers: set[str] = set()
        async with self.db.transaction() as session:
            store = RunStore(session)
            for run_id, backend in await store.active_run_ids():
                if backend == "local":
                    leftovers.add(run_id)
                run = await store.get(run_id)
                status = run.status if run else "running"
                if backend == "reana" and run is not None and run.backend_ids.get("workflow_id"):
                    detail = (
                        f"the workflows service restarted while the run was {status}; its "
                        f"monitoring stopped (REANA workflow {run.backend_ids['workflow_id']} on "
                        f"{run.reana_server} may still be running there)"
                    )
                else:
                    detail = (
                        f"the workflows service restarted while the run was {status}; its "
                        "processes did not survive"
                    )
                if await store.mark_interrupted(run_id, detail):
                    RUNS.labels(backend, "interrupted").inc()
                    log.info("run_interrupted", run_id=run_id, previous=status)
        if leftovers:
            killed = await asyncio.to_thread(kill_leftovers, leftovers)
            for run_id in leftovers:
                await self._local.runtime.stop_run(run_id)
            if killed:
                log.info("leftover_processes_killed", count=killed)
        for number in range(self._settings.local.max_concurrent_runs):
            self._workers.append(asyncio.create_task(self._worker(), name=f"local-runner-{number}"))
        self._started = True

    async def stop(self) -> None:
        """Stop everything: processes killed, active runs recorded as interrupted."""
        ids = [*self._active, *self._waiting]
        backends = {
            run_id: active.submission.backend
            for run_id, active in [*self._active.items(), *self._waiting.items()]
        }
        for worker in self._workers:
            worker.cancel()
        tasks = [a.task for a in list(self._active.values()) if a.task is not None]
        for task in tasks:
            task.cancel()
        for task in [*self._workers, *tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        if ids:
            async with self.db.transaction() as session:
                store = RunStore(session)
                for run_id in ids:
                    if await store.mark_interrupted(
                        run_id, "the workflows service stopped while the run was active"
                    ):
                        RUNS.labels(backends.get(run_id, "local"), "interrupted").inc()
        self._active.clear()
        self._waiting.clear()
        self._started = False

    # ------------------------------------------------------------------ submission

    def enqueue(self, submission: Submission) -> None:
        """Accept a committed run: local runs join the FIFO queue, REANA runs start a monitor."""
        active = _Active(submission)
        RUNS.labels(submission.backend, "queued").inc()
        if submission.backend == "local":
            self._waiting[submission.run_id] = active
            self._queue.put_nowait(submission.run_id)
        else:
            self._active[submission.run_id] = active
            active.task = asyncio.create_task(self._guarded(active, self._run_reana))

    def queued_ids(self) -> list[str]:
        """Local runs waiting for a slot, in order."""
        return list(self._waiting)

    async def cancel(self, run_id: str, *, wait: float = 30.0) -> bool:
        """Cancel a run this process knows; True if it was queued or running here.

        A queued run is dropped from the queue; a running one has its processes (or its REANA
        workflow) stopped. Waits up to ``wait`` seconds for the run to settle.
        """
        waiting = self._waiting.pop(run_id, None)
        if waiting is not None:
            async with self.db.transaction() as session:
                store = RunStore(session)
                if await store.set_status(
                    run_id, "cancelled", detail="cancelled while queued", only_from=["queued"]
                ):
                    await self.events.record(session, run_id, EventKind.RUN_FINISHED)
                await store.finish_pending_steps(run_id, "cancelled")
            self.events.wake()
            RUNS.labels(waiting.submission.backend, "cancelled").inc()
            log.info("run_cancelled", run_id=run_id, queued=True)
            return True
        active = self._active.get(run_id)
        if active is None:
            return False
        active.cancel.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await active.done.wait()
        return True

    # ------------------------------------------------------------------ local runs

    async def _worker(self) -> None:
        while True:
            run_id = await self._queue.get()
            active = self._waiting.pop(run_id, None)
            if active is None:
                continue  # cancelled while queued
            self._active[run_id] = active
            self.max_concurrent_seen = max(
                self.max_concurrent_seen,
                sum(1 for a in self._active.values() if a.submission.backend == "local"),
            )
            active.task = asyncio.current_task()
            try:
                await self._guarded(active, self._run_local)
            finally:
                active.task = None

    async def _guarded(self, active: _Active, body: Callable[[_Active], Any]) -> None:
        run_id = active.submission.run_id
        try:
            await body(active)
        except VreError as exc:
            await self._fail(run_id, _error_of(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run_crashed", run_id=run_id, error=type(exc).__name__)
            await self._fail(
                run_id,
                problem(
                    "Internal error",
                    f"the run failed unexpectedly ({type(exc).__name__})",
                    "internal-error",
                    500,
                ),
            )
        finally:
            self._active.pop(run_id, None)
            active.done.set()

    async def _set_running(self, run_id: str) -> bool:
        async with self.db.transaction() as session:
            changed = await RunStore(session).set_status(
                run_id, "running", detail="started", only_from=["queued"]
            )
            if changed:
                await self.events.record(session, run_id, EventKind.RUN_STARTED)
        if changed:
            self.events.wake()
            self._count(run_id, "running")
            log.info("run_started", run_id=run_id)
        return changed

    async def _fail(self, run_id: str, error: dict[str, Any]) -> None:
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
                self._count(run_id, "failed")
                log.info("run_failed", run_id=run_id, reason=str(error.get("detail"))[:300])
        self.events.wake()

    async def _cancelled(self, run_id: str, detail: str = "cancelled by the user") -> None:
        async with self.db.transaction() as session:
            store = RunStore(session)
            if await store.set_status(
                run_id, "cancelled", detail=detail, only_from=["queued", "running"]
            ):
                await self.events.record(session, run_id, EventKind.RUN_FINISHED)
            await store.finish_pending_steps(run_id, "cancelled")
        self.events.wake()
        self._count(run_id, "cancelled")
        log.info("run_cancelled", run_id=run_id)

    async def _run_local(self, active: _Active) -> None:
        sub = active.submission
        if not await self._set_running(sub.run_id):
            return
        paths = self.paths(sub.run_id)
        paths.create()
        await self._stage(sub, paths)
        if active.cancel.is_set():
            await self._cancelled(sub.run_id)
            return
        job = LocalJob(
            run_id=sub.run_id,
            workflow_type=sub.workflow_type,
            spec=sub.spec,
            parameters=sub.parameters,
            workspace=paths.workspace,
            logs_dir=paths.logs,
            tmp_dir=paths.tmp,
            steps=sub.steps,
            cancel=active.cancel,
        )
        outcome = await self._local.execute(job, _Reporter(self, sub.run_id))
        if outcome.status == "cancelled":
            await self._cancelled(sub.run_id)
            return
        await self._conclude(
            sub, paths, succeeded=outcome.status == "finished", message=outcome.message
        )

    async def _conclude(
        self, sub: Submission, paths: RunPaths, *, succeeded: bool, message: str | None
    ) -> None:
        """Collect outputs, register them, and set the final status."""
        async with self.db.transaction() as session:
            run = await RunStore(session).get(sub.run_id)
        assert run is not None
        if not succeeded:
            if run.register_partial_outputs and run.destination is not None:
                outputs = await self._collect(sub.spec, paths, strict=False)
                await self._record_outputs(sub.run_id, outputs)
                with contextlib.suppress(VreError):
                    await self._register(sub, run.name, run.destination, outputs, run.images)
            await self._fail(sub.run_id, problem("Run failed", message or "a step failed"))
            return
        outputs = await self._collect(sub.spec, paths, strict=True)
        await self._record_outputs(sub.run_id, outputs)
        if run.destination is not None and outputs:
            await self._register(sub, run.name, run.destination, outputs, run.images)
        async with self.db.transaction() as session:
            if await RunStore(session).set_status(
                sub.run_id,
                "finished",
                detail=f"{len(outputs)} output file(s)",
                only_from=["running", "queued"],
            ):
                await self.events.record(session, sub.run_id, EventKind.RUN_FINISHED)
        self.events.wake()
        self._count(sub.run_id, "finished")
        log.info("run_finished", run_id=sub.run_id, outputs=len(outputs))

    # ------------------------------------------------------------------ inputs

    async def _stage(self, sub: Submission, paths: RunPaths) -> None:
        """Uploaded files and Data Lake files into the workspace; checksums recorded."""
        async with self.db.transaction() as session:
            run = await RunStore(session).get(sub.run_id)
        assert run is not None
        staged: list[RunInput] = []
        for item in run.inputs:
            if item.kind in ("upload", "inline"):
                target = inside(paths.workspace, item.path)
                source = inside(paths.uploads, item.path)
                await asyncio.to_thread(link_or_copy, source, target, prefer_link=False)
                staged.append(item.model_copy(update={"staged_by": "copy"}))
        for entry in sub.did_inputs:
            target = inside(paths.workspace, entry.path)
            how = await self._stage_did(sub, entry.source, target)
            staged.append(
                RunInput(
                    kind="did",
                    path=entry.path,
                    requested=entry.source.requested,
                    did=entry.source.did,
                    bytes=entry.source.bytes,
                    adler32=entry.source.adler32,
                    md5=entry.source.md5,
                    staged_by=how,
                )
            )
        async with self.db.transaction() as session:
            await RunStore(session).set_inputs(sub.run_id, staged)

    async def _stage_did(self, sub: Submission, source: ResolvedInput, target: Path) -> str:
        prefer_link = self._settings.local.staging == "link"
        for local_path in source.local_paths:
            try:
                how = await asyncio.to_thread(
                    link_or_copy, local_path, target, prefer_link=prefer_link
                )
            except OSError:
                continue
            if how == "copy":
                digest = await asyncio.to_thread(digest_file, target)
                if source.adler32 and digest.adler32 != source.adler32:
                    await asyncio.to_thread(target.unlink, True)
                    continue
            return how
        if sub.token is None:
            raise VreError("no token to download Data Lake inputs with")
        target.parent.mkdir(parents=True, exist_ok=True)
        async with (
            self._datalake.download(sub.token, source.scope, source.name) as body,
            await anyio.open_file(target, "wb") as handle,
        ):
            async for chunk in body:
                await handle.write(chunk)
        return "download"

    # ------------------------------------------------------------------ outputs

    async def _collect(
        self, spec: dict[str, Any], paths: RunPaths, *, strict: bool
    ) -> list[RunOutput]:
        files, directories = declared_outputs(spec)
        found: dict[str, Path] = {}
        missing: list[str] = []
        for rel in files:
            try:
                path = inside(paths.workspace, rel)
            except ValueError:
                missing.append(rel)
                continue
            if path.is_file():
                found[rel] = path
            else:
                missing.append(rel)
        for rel in directories:
            try:
                folder = inside(paths.workspace, rel)
            except ValueError:
                missing.append(rel + "/")
                continue
            if not folder.is_dir():
                missing.append(rel + "/")
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                found[path.relative_to(paths.workspace).as_posix()] = path
        if missing and strict:
            raise OutputsMissingError("declared output(s) were not produced: " + ", ".join(missing))
        outputs = []
        for rel, path in sorted(found.items()):
            digest = await asyncio.to_thread(digest_file, path)
            outputs.append(
                RunOutput(path=rel, bytes=digest.bytes, adler32=digest.adler32, md5=digest.md5)
            )
        return outputs

    async def _record_outputs(self, run_id: str, outputs: list[RunOutput]) -> None:
        async with self.db.transaction() as session:
            await RunStore(session).set_outputs(run_id, outputs)

    async def _register(
        self,
        sub: Submission,
        run_name: str,
        destination: OutputDestination,
        outputs: list[RunOutput],
        images: list[str],
    ) -> None:
        """Outputs → the Data Lake: one dataset named after the run, with its provenance.

        The provenance travels twice: as a manifest file ``vre-run.json`` registered in the
        dataset (works on every Rucio), and as metadata keys on the dataset (needs Rucio's
        JSON metadata plugin, absent on SQLite: then a warning is recorded on the run).
        Metadata values are scalars: lists are joined with commas, which neither DIDs nor
        image names contain.
        """
        if sub.token is None:
            raise VreError("no token to register outputs with")
        token = sub.token
        paths = self.paths(sub.run_id)
        scope = destination.scope
        dataset = destination.dataset or f"{run_name}-{sub.run_id[:8]}"
        dataset_did = f"{scope}:{dataset}"
        async with self.db.transaction() as session:
            run = await RunStore(session).get(sub.run_id)
        assert run is not None
        await self._datalake.create_dataset(token, scope, dataset, {})
        async with self.db.transaction() as session:
            await RunStore(session).update_run(sub.run_id, output_dataset=dataset_did)
        registered: list[RunOutput] = []
        for out in outputs:
            result = await self._datalake.upload(
                token,
                scope,
                f"{dataset}/{out.path}",
                inside(paths.workspace, out.path),
                md5=out.md5,
                size=out.bytes,
                rse=destination.rse_expression,
                dataset=dataset_did,
                metadata={},
            )
            if result.adler32 != out.adler32 or result.md5 != out.md5:
                raise VreError(f"the Data Lake recorded other checksums for {out.path}")
            registered.append(out.model_copy(update={"did": result.did, "registered_at": utcnow()}))
            async with self.db.transaction() as session:
                await RunStore(session).set_outputs(sub.run_id, [registered[-1]])

        manifest = paths.root / "vre-run.json"
        await asyncio.to_thread(
            manifest.write_text, json.dumps(_manifest(run, registered), indent=2), "utf-8"
        )
        digest = await asyncio.to_thread(digest_file, manifest)
        names = {o.path for o in outputs}
        manifest_name = "vre-run.json" if "vre-run.json" not in names else ".vre-run.json"
        provenance = await self._datalake.upload(
            token,
            scope,
            f"{dataset}/{manifest_name}",
            manifest,
            md5=digest.md5,
            size=digest.bytes,
            rse=destination.rse_expression,
            dataset=dataset_did,
            metadata={},
        )
        async with self.db.transaction() as session:
            await RunStore(session).update_run(sub.run_id, provenance_did=provenance.did)

        metadata: dict[str, Any] = {
            "run_id": sub.run_id,
            "spec_sha256": run.spec_sha256,
            "input_dids": ",".join(sorted({i.source.did for i in sub.did_inputs})),
            "images": ",".join(images),
            "workflow_type": sub.workflow_type,
        }
        try:
            await self._datalake.set_metadata(token, scope, dataset, metadata)
        except InvalidInputError as exc:
            async with self.db.transaction() as session:
                await RunStore(session).add_warning(
                    sub.run_id,
                    f"the Data Lake did not take the provenance metadata on {dataset_did} "
                    f"({exc.detail}); the provenance is in {provenance.did}",
                )
        if destination.lifetime:
            lifetime = {"lifetime": destination.lifetime}
            for did in [dataset_did, provenance.did, *(o.did for o in registered if o.did)]:
                did_scope, _, did_name = did.partition(":")
                await self._datalake.set_metadata(token, did_scope, did_name, lifetime)

    # ------------------------------------------------------------------ REANA runs

    async def _run_reana(self, active: _Active) -> None:
        sub = active.submission
        assert sub.reana_server is not None
        assert sub.reana_token is not None
        assert sub.reana_workflow_id is not None
        client = self._reana[sub.reana_server]
        token = sub.reana_token
        workflow_id = sub.reana_workflow_id
        paths = self.paths(sub.run_id)
        paths.create()
        async with self._reana_slots:
            await self._stage(sub, paths)
            for path in sorted(paths.workspace.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    if active.cancel.is_set():
                        break
                    rel = path.relative_to(paths.workspace).as_posix()
                    await client.upload(token, workflow_id, rel, path)
            if active.cancel.is_set():
                with contextlib.suppress(VreError):
                    await client.delete(token, workflow_id)
                await self._cancelled(sub.run_id)
                return
            await client.start(token, workflow_id, sub.parameter_overrides)
            final = await self._poll_reana(active, client, token, workflow_id, paths)
        if final == "cancelled":
            await self._cancelled(sub.run_id, "stopped on REANA")
            return
        if final == "deleted":
            await self._fail(
                sub.run_id, problem("Run deleted", "the workflow was deleted on REANA")
            )
            return
        if final == "finished":
            await self._download_outputs(client, token, workflow_id, sub.spec, paths)
        await self._conclude(
            sub,
            paths,
            succeeded=final == "finished",
            message=None if final == "finished" else "the workflow failed on REANA",
        )

    async def _poll_reana(
        self,
        active: _Active,
        client: ReanaClient,
        token: str,
        workflow_id: str,
        paths: RunPaths,
    ) -> str:
        settings = self._settings.reana
        delay = settings.poll_initial_seconds
        last = "queued"
        stop_sent = False
        failing_since: float | None = None
        while True:
            if active.cancel.is_set() and not stop_sent:
                stop_sent = True
                with contextlib.suppress(VreError):
                    await client.stop(token, workflow_id)
            try:
                data = await client.status(token, workflow_id)
                await self._mirror_reana_logs(
                    active.submission.run_id, client, token, workflow_id, paths
                )
            except BackendError as exc:  # REANA's API is down or slow: the run may be fine
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= settings.poll_outage_seconds:
                    raise
                log.warning(
                    "reana_poll_failed",
                    run_id=active.submission.run_id,
                    error=exc.detail,
                    failing_for=round(now - failing_since, 1),
                )
                data = None
            else:
                failing_since = None
            if data is not None:
                status = REANA_STATUS.get(str(data.get("status")), "running")
                if status != last and status in ("running",):
                    await self._set_running(active.submission.run_id)
                last = status
                if status in ("finished", "failed", "cancelled", "deleted"):
                    return status
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await active.cancel.wait()
            if active.cancel.is_set():
                delay = settings.poll_initial_seconds
            else:
                delay = min(delay * settings.poll_factor, settings.poll_max_seconds)

    async def _mirror_reana_logs(
        self, run_id: str, client: ReanaClient, token: str, workflow_id: str, paths: RunPaths
    ) -> None:
        """REANA's job logs → our per-step log files and step records (followers see them)."""
        logs = await client.logs(token, workflow_id)
        jobs = logs.get("job_logs")
        if not isinstance(jobs, dict):
            return
        steps: list[Step] = []
        job_status = {
            "created": "pending",
            "queued": "pending",
            "running": "running",
            "finished": "finished",
            "failed": "failed",
            "stopped": "cancelled",
        }
        for index, job in enumerate(j for j in jobs.values() if isinstance(j, dict)):
            text = str(job.get("logs") or "")
            _append_new(paths.step_log(index), text)
            steps.append(
                Step(
                    index=index,
                    name=str(job.get("job_name") or index),
                    status=job_status.get(str(job.get("status")), "running"),
                    image=str(job.get("docker_img")) if job.get("docker_img") else None,
                    execution="reana",
                    commands=[str(job["cmd"])] if job.get("cmd") else [],
                    started_at=None,
                    finished_at=None,
                )
            )
        async with self.db.transaction() as session:
            await RunStore(session).replace_steps(run_id, steps)

    async def _download_outputs(
        self,
        client: ReanaClient,
        token: str,
        workflow_id: str,
        spec: dict[str, Any],
        paths: RunPaths,
    ) -> None:
        files, directories = declared_outputs(spec)
        wanted = set(files)
        if directories:
            for item in await client.files(token, workflow_id):
                name = str(item.get("name", ""))
                if any(name == d or name.startswith(d.rstrip("/") + "/") for d in directories):
                    wanted.add(name)
        for name in sorted(wanted):
            target = inside(paths.workspace, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            try:
                async with (
                    client.download(token, workflow_id, name) as body,
                    await anyio.open_file(partial, "wb") as handle,
                ):
                    async for chunk in body:
                        await handle.write(chunk)
            except VreError as exc:
                partial.unlink(missing_ok=True)
                if exc.status == 404:
                    continue  # reported as a missing output
                raise
            os.replace(partial, target)

    async def wait_idle(self, run_id: str, within: float = 60.0) -> None:
        """Tests and shutdown: wait until a run is no longer handled here."""
        active = self._active.get(run_id) or self._waiting.get(run_id)
        if active is None:
            return
        async with asyncio.timeout(within):
            await active.done.wait()

    def is_handled(self, run_id: str) -> bool:
        """True while this process queues or executes the run."""
        return run_id in self._active or run_id in self._waiting

    async def remove_files(self, run_id: str) -> None:
        """Delete a run's folders."""
        await asyncio.to_thread(shutil.rmtree, self.paths(run_id).root, True)


def _manifest(run: Run, outputs: list[RunOutput]) -> dict[str, Any]:
    """The provenance manifest registered with a run's outputs (vre-run.json)."""
    return {
        "vre_run_manifest": 1,
        "run_id": run.id,
        "name": run.name,
        "owner": run.owner,
        "backend": run.backend,
        "backend_ids": run.backend_ids,
        "workflow_type": run.workflow_type,
        "spec_sha256": run.spec_sha256,
        "parameters": run.parameters,
        "images": run.images,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "inputs": [
            i.model_dump(include={"kind", "did", "path", "bytes", "adler32", "md5"})
            for i in run.inputs
        ],
        "outputs": [
            o.model_dump(include={"path", "did", "bytes", "adler32", "md5"}) for o in outputs
        ],
        "steps": [
            s.model_dump(include={"name", "image", "execution", "commands", "exit_code"})
            for s in run.steps
        ],
    }


def _append_new(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` appending only what is new (REANA sends whole logs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    old = path.read_bytes() if path.exists() else b""
    if data == old:
        return
    if data.startswith(old):
        with path.open("ab") as handle:
            handle.write(data[len(old) :])
    else:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
