"""RunService: submit, list, inspect, cancel, delete and re-run workflow runs.

Personal runs are their owner's alone; a project's runs follow the project policy
(:mod:`vre_workflows.services.access`) and register their outputs in the project's scope.
"""

from __future__ import annotations

import asyncio
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.db import after_commit
from vre_common.errors import InvalidInputError, PayloadTooLargeError
from vre_common.policy import Action
from vre_common.provenance.events import EventKind
from vre_workflows.backends.base import BackendRegistry, DatalakePort, PlanRequest, ResolvedInput
from vre_workflows.errors import InvalidSpecificationError, RunNotFoundError, RunStateError
from vre_workflows.models import (
    ACTIVE_STATUSES,
    InputRef,
    OutputDestination,
    OutputList,
    Run,
    RunCreate,
    RunInput,
    RunPage,
    RunRerun,
)
from vre_workflows.services.access import RunAccess
from vre_workflows.services.queue import RunManager, Ticket, slot_group
from vre_workflows.services.validation import ValidationService, invalid, parse
from vre_workflows.spec import (
    check_relative_path,
    declared_outputs,
    default_parameters,
    images,
    serial_steps,
    spec_sha256,
    workflow_type,
)
from vre_workflows.storage.runs import NewRun, NewStep, RunStore
from vre_workflows.validation.files import WorkflowFiles
from vre_workflows.workspace import RunPaths, digest_file, inside

COPY_CHUNK = 1 << 20


@dataclass
class UploadedFile:
    """A file sent with a multipart submission: its workspace path and its spooled content."""

    path: str
    file: BinaryIO


@dataclass
class StagedInput:
    """A Data Lake file and where it goes in the workspace."""

    source: ResolvedInput
    path: str


def _path_error(loc: list[str | int], path: str, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path!r}: {reason}", errors=[{"loc": loc, "msg": reason, "type": "path"}]
    )


class RunService:
    """The rules of runs: validation on submission, who may do what, state transitions."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        access: RunAccess,
        token: str | None,
        validation: ValidationService,
        manager: RunManager,
        backends: BackendRegistry,
        datalake: DatalakePort,
        data_dir: Path,
        max_inline_bytes: int,
        max_upload_bytes: int,
    ) -> None:
        self._session = session
        self._access = access
        self._token = token
        self._store = RunStore(session)
        self._validation = validation
        self._manager = manager
        self._backends = backends
        self._datalake = datalake
        self._data_dir = data_dir
        self._max_inline = max_inline_bytes
        self._max_upload = max_upload_bytes

    # ------------------------------------------------------------------ reads

    async def get(self, user: Principal, run_id: str, action: Action = Action.RUNS_READ) -> Run:
        """A run the caller may ``action`` (their own; or their project's, by the policy).

        The run is read once, with what the answer shows, and the access decided on it (a
        status poll is the most frequent call)."""
        row = await self._store.one_row(run_id)
        if row is None:
            raise RunNotFoundError(f"no run {run_id}")
        await self._access.require(
            user, self._token, run_id, owner=row.owner, project=row.project, action=action
        )
        return self._store.to_model(row)

    async def list_runs(
        self,
        user: Principal,
        *,
        status: list[str],
        name: str | None,
        page: int,
        size: int,
        project: str | None = None,
    ) -> RunPage:
        """The caller's runs (or, with ``project``, that project's runs), newest first."""
        if project is not None:
            await self._access.project(user, self._token, project, Action.RUNS_READ)
        items, total = await self._store.list_runs(
            None if project else user.key,
            project=project,
            status=status,
            name=name,
            page=page,
            size=size,
        )
        return RunPage(items=items, total=total, page=page, size=size)

    async def outputs(self, user: Principal, run_id: str) -> OutputList:
        """The declared outputs a run produced, with their DIDs once registered."""
        run = await self.get(user, run_id)
        return OutputList(run_id=run.id, dataset=run.output_dataset, items=run.outputs)

    # ------------------------------------------------------------------ submission

    async def create(
        self,
        user: Principal,
        token: str | None,
        body: RunCreate,
        uploads: list[UploadedFile] | None = None,
    ) -> Run:
        """Validate and accept a run; it starts once the request has committed."""
        parsed = parse(body.spec)
        destination = await self._destination(
            user, token, body.project, body.output, declares=any(declared_outputs(parsed.spec))
        )
        return await self._submit(
            user,
            token,
            spec_object=parsed,
            parameters=body.parameters,
            inputs=body.inputs,
            inline=body.files,
            uploads=uploads or [],
            copied_from=None,
            backend=self._choose_backend(body.backend, parsed.spec),
            reana_server=body.reana_server,
            destination=destination,
            name=body.name,
            register_partial=body.register_partial_outputs,
            rerun_of=None,
            project=body.project,
        )

    def _choose_backend(self, requested: str | None, spec: Any) -> str:
        """The backend asked for; else Slurm when a step says ``compute_backend: slurmcern``
        (REANA's name for it); else the deployment's default."""
        if requested:
            return requested
        wanted = {s.get("compute_backend") for s in serial_steps(spec)}
        if "slurmcern" in wanted and self._backends.find("slurm") is not None:
            return "slurm"
        return self._backends.default

    async def _destination(
        self,
        user: Principal,
        token: str | None,
        project: str | None,
        output: OutputDestination | None,
        *,
        declares: bool = True,
    ) -> OutputDestination | None:
        """Check ``runs.submit`` for a project run; its outputs go to the project's scope.

        A personal run's outputs go to the submitter's own scope unless it names another
        destination (none only where no Data Lake is configured)."""
        if project is None:
            if output is None and token is not None and declares:
                scope = await self._datalake.own_scope(token)
                return OutputDestination(scope=scope) if scope else None
            return output
        access = await self._access.project(user, token, project, Action.RUNS_SUBMIT)
        if output is None:
            return OutputDestination(scope=access.scope)
        if output.scope != access.scope:
            raise InvalidInputError(
                f"a run of the project {project} registers its outputs in the project's scope "
                f"{access.scope}, not {output.scope}",
                errors=[
                    {
                        "loc": ["output", "scope"],
                        "msg": f"must be {access.scope}",
                        "type": "value_error",
                    }
                ],
            )
        return output

    async def rerun(self, user: Principal, token: str | None, run_id: str, body: RunRerun) -> Run:
        """A new run of the same specification and inputs with changed parameters."""
        original = await self.get(user, run_id)
        destination = await self._destination(
            user, token, original.project, body.output or original.destination
        )
        paths = RunPaths.of(self._data_dir, original.id)
        has_files = any(i.kind in ("upload", "inline") for i in original.inputs)
        if has_files and not paths.uploads.is_dir():
            raise RunStateError(
                f"run {run_id} was deleted with its uploaded input files: it cannot be re-run"
            )
        spec = await self._spec_of(original.id)
        defaults = default_parameters(spec)
        previous = {k: v for k, v in original.parameters.items() if defaults.get(k) != v}
        return await self._submit(
            user,
            token,
            spec_object=parse(spec),
            parameters={**previous, **body.parameters},
            inputs=original.requested_inputs,
            inline={},
            uploads=[],
            copied_from=(paths, [i for i in original.inputs if i.kind in ("upload", "inline")]),
            backend=original.backend,
            reana_server=original.reana_server,
            destination=destination,
            name=body.name or original.name,
            register_partial=original.register_partial_outputs,
            rerun_of=original.id,
            project=original.project,
        )

    async def _spec_of(self, run_id: str) -> dict[str, Any]:
        spec = await self._store.spec(run_id)
        assert spec is not None
        return spec

    async def _submit(
        self,
        user: Principal,
        token: str | None,
        *,
        spec_object: Any,
        parameters: dict[str, Any],
        inputs: list[InputRef],
        inline: dict[str, str],
        uploads: list[UploadedFile],
        copied_from: tuple[RunPaths, list[RunInput]] | None,
        backend: str,
        reana_server: str | None,
        destination: OutputDestination | None,
        name: str | None,
        register_partial: bool,
        rerun_of: str | None,
        project: str | None,
    ) -> Run:
        spec = spec_object.spec
        defaults = default_parameters(spec)
        unknown = sorted(set(parameters) - set(defaults))
        if unknown and isinstance(spec, dict):
            raise InvalidSpecificationError(
                f"parameter(s) not declared in inputs.parameters: {', '.join(unknown)}",
                errors=[
                    {
                        "loc": ["parameters", k],
                        "msg": "not declared in inputs.parameters",
                        "type": "parameters",
                    }
                    for k in unknown
                ],
            )
        effective = {**defaults, **parameters}
        outcome = await self._validation.validate(
            spec_object,
            parameters=effective,
            name=name,
            backend=backend,
            files=WorkflowFiles.of_submission(inline, uploads, copied_from),
            more_inputs=bool(inputs),
        )
        if not outcome.report.valid:
            raise invalid(outcome.report)
        kind = workflow_type(spec) or "serial"
        warnings = [f"{w.type}: {w.message}" for w in outcome.report.warnings]

        run_id = str(uuid.uuid4())
        run_name = name or f"{kind}-{run_id[:8]}"
        file_inputs = self._check_files(inline, uploads, copied_from)
        staged = await self._resolve_inputs(token, inputs, taken=set(file_inputs))
        self._check_workflow_file(spec, kind, set(file_inputs) | {s.path for s in staged})

        backend_impl = self._backends.get(backend)
        plan = await backend_impl.plan(
            PlanRequest(
                run_id=run_id,
                run_name=run_name,
                owner=user.key,
                workflow_type=kind,
                spec=spec,
                steps=outcome.expanded_steps or serial_steps(spec),
                parameters=effective,
                server=reana_server,
            )
        )
        warnings += plan.warnings
        steps = [
            NewStep(
                name=p.name,
                commands=p.commands,
                image=p.image,
                execution=p.execution,
                timeout_seconds=p.timeout_seconds if p.execution != "reana" else None,
                memory_limit=p.memory_limit,
            )
            for p in plan.steps
        ]
        ticket = Ticket(
            run_id=run_id,
            backend=backend,
            token=token,
            credential=plan.credential,
            replicas={s.path: s.source.local_paths for s in staged if s.source.local_paths},
            group=slot_group(user.key, project),
        )
        backend_ids = plan.backend_ids
        server_name = plan.server

        paths = RunPaths.of(self._data_dir, run_id)
        paths.create()
        try:
            recorded = await self._write_files(paths, inline, uploads, copied_from)
            run = await self._store.create(
                NewRun(
                    id=run_id,
                    owner=user.key,
                    owner_name=user.username,
                    name=run_name,
                    backend=backend,
                    workflow_type=kind,
                    spec=spec,
                    spec_sha256=spec_sha256(spec),
                    parameters=effective,
                    images=images(spec),
                    steps=steps,
                    inputs=recorded
                    + [
                        RunInput(
                            kind="did",
                            path=s.path,
                            requested=s.source.requested,
                            did=s.source.did,
                            bytes=s.source.bytes,
                            adler32=s.source.adler32,
                            md5=s.source.md5,
                        )
                        for s in staged
                    ],
                    requested_inputs=inputs,
                    destination=destination,
                    register_partial_outputs=register_partial,
                    reana_server=server_name,
                    backend_ids=backend_ids,
                    warnings=warnings,
                    rerun_of=rerun_of,
                    project=project,
                )
            )
        except BaseException:
            paths.remove()
            raise
        after_commit(self._session, lambda: self._manager.enqueue(ticket))
        return run

    def _check_files(
        self,
        inline: dict[str, str],
        uploads: list[UploadedFile],
        copied_from: tuple[RunPaths, list[RunInput]] | None,
    ) -> dict[str, str]:
        seen: dict[str, str] = {}
        total = 0
        for path, text in inline.items():
            reason = check_relative_path(path)
            if reason:
                raise _path_error(["files", path], path, reason)
            total += len(text.encode())
            seen[posixpath.normpath(path)] = "inline"
        if total > self._max_inline:
            raise PayloadTooLargeError(
                f"inline files total {total} bytes; the limit is {self._max_inline} "
                "(send larger files as multipart uploads or Data Lake DIDs)"
            )
        for upload in uploads:
            reason = check_relative_path(upload.path)
            if reason:
                raise _path_error(["files", upload.path], upload.path, reason)
            normalized = posixpath.normpath(upload.path)
            if normalized in seen:
                raise _path_error(["files", upload.path], upload.path, "given twice")
            seen[normalized] = "upload"
        if copied_from is not None:
            for item in copied_from[1]:
                seen[item.path] = item.kind
        return seen

    async def _resolve_inputs(
        self, token: str | None, inputs: list[InputRef], *, taken: set[str]
    ) -> list[StagedInput]:
        if not inputs:
            return []
        if token is None:
            raise InvalidInputError("Data Lake inputs need the caller's bearer token")
        staged: list[StagedInput] = []
        used = set(taken)
        for index, ref in enumerate(inputs):
            if ref.path is not None:
                reason = check_relative_path(ref.path)
                if reason:
                    raise _path_error(["inputs", index, "path"], ref.path, reason)
            files = await self._datalake.resolve(token, [ref.did])
            if not files:
                raise InvalidInputError(
                    f"{ref.did} holds no files",
                    errors=[{"loc": ["inputs", index, "did"], "msg": "no files", "type": "did"}],
                )
            single = len(files) == 1 and files[0].did == ref.did
            for item in files:
                base = posixpath.basename(item.name)
                if single:
                    path = ref.path or base
                else:
                    path = posixpath.join(ref.path, base) if ref.path else base
                path = posixpath.normpath(path)
                if path in used:
                    raise _path_error(
                        ["inputs", index],
                        path,
                        f"two inputs would be placed at {path}; give inputs[{index}].path",
                    )
                used.add(path)
                staged.append(StagedInput(source=item, path=path))
        return staged

    @staticmethod
    def _check_workflow_file(spec: Any, kind: str, available: set[str]) -> None:
        if kind not in ("cwl", "snakemake"):
            return
        workflow_file = spec.get("workflow", {}).get("file") if isinstance(spec, dict) else None
        if isinstance(workflow_file, str) and posixpath.normpath(workflow_file) not in available:
            raise InvalidSpecificationError(
                f"the workflow file {workflow_file} is not among the run's files: send it in "
                "`files`, as an upload, or as a Data Lake input",
                errors=[
                    {
                        "loc": ["spec", "workflow", "file"],
                        "msg": "file not provided",
                        "type": "missing",
                    }
                ],
            )

    async def _write_files(
        self,
        paths: RunPaths,
        inline: dict[str, str],
        uploads: list[UploadedFile],
        copied_from: tuple[RunPaths, list[RunInput]] | None,
    ) -> list[RunInput]:
        recorded: list[RunInput] = []
        for path, text in inline.items():
            target = inside(paths.uploads, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(target.write_text, text, "utf-8")
            digest = await asyncio.to_thread(digest_file, target)
            recorded.append(
                RunInput(
                    kind="inline",
                    path=posixpath.normpath(path),
                    bytes=digest.bytes,
                    adler32=digest.adler32,
                    md5=digest.md5,
                )
            )
        budget = self._max_upload
        for upload in uploads:
            target = inside(paths.uploads, upload.path)
            written = await asyncio.to_thread(_copy_limited, upload.file, target, budget)
            budget -= written
            digest = await asyncio.to_thread(digest_file, target)
            recorded.append(
                RunInput(
                    kind="upload",
                    path=posixpath.normpath(upload.path),
                    bytes=digest.bytes,
                    adler32=digest.adler32,
                    md5=digest.md5,
                )
            )
        if copied_from is not None:
            source_paths, items = copied_from
            for item in items:
                target = inside(paths.uploads, item.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                with inside(source_paths.uploads, item.path).open("rb") as source:
                    await asyncio.to_thread(_copy_limited, source, target, 1 << 62)
                recorded.append(item.model_copy(update={"staged_by": None}))
        return recorded

    # ------------------------------------------------------------------ changes

    async def cancel(self, user: Principal, run_id: str) -> Run:
        """Stop a queued or running run (its processes killed, its REANA workflow stopped)."""
        run = await self.get(user, run_id, Action.RUNS_CANCEL)
        if run.status not in ACTIVE_STATUSES:
            raise RunStateError(
                f"run {run_id} is {run.status}: only queued or running runs can be cancelled"
            )
        handled = await self._manager.cancel(run_id)
        if not handled:
            # Not executed by this process (another replica, or a record left behind).
            await self._manager.cancel_elsewhere(run)
            if await self._store.set_status(
                run_id,
                "cancelled",
                detail="cancelled by the user",
                only_from=["queued", "running"],
            ):
                events = self._manager.events
                await events.record(self._session, run_id, EventKind.RUN_FINISHED)
                after_commit(self._session, events.wake)
            await self._store.finish_pending_steps(run_id, "cancelled")
        return await self.get(user, run_id)

    async def delete(self, user: Principal, run_id: str) -> None:
        """Remove a finished run's workspace (and its REANA workflow); the record stays.

        A project run needs ``runs.cancel`` (the same members who may stop it)."""
        run = await self.get(user, run_id, Action.RUNS_CANCEL)
        if run.status in ACTIVE_STATUSES:
            raise RunStateError(f"run {run_id} is {run.status}: cancel it before deleting it")
        backend = self._backends.find(run.backend)
        if backend is not None:
            await backend.discard(run, user.key)
        await self._manager.remove_files(run_id)
        if run.status != "deleted":
            await self._store.set_status(run_id, "deleted", detail="workspace removed")
        await self._store.update_run(run_id, workspace_removed=True)


def _copy_limited(source: BinaryIO, target: Path, limit: int) -> int:
    """Copy a spooled upload to ``target`` in chunks; 413 beyond ``limit`` bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    source.seek(0)
    with target.open("wb") as handle:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > limit:
                raise PayloadTooLargeError(
                    f"uploaded files exceed the limit of {limit} bytes for one run"
                )
            handle.write(chunk)
    return written
