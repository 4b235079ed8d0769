"""LocalWorkflowBackend: serial steps, snakemake and cwltool as real local subprocesses."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from vre_common.errors import VreError
from vre_workflows.backends.base import (
    ContainerRuntime,
    ExecutionOutcome,
    Plan,
    PlanRequest,
    RunJob,
    RunReporter,
    StepPlan,
)
from vre_workflows.backends.containers import container_prefix, memory_bytes
from vre_workflows.backends.process import kill_leftovers, run_in_group
from vre_workflows.config import LocalExecutorSettings
from vre_workflows.errors import (
    ImageUnavailableError,
    InvalidSpecificationError,
    LocalExecutionRefusedError,
)
from vre_workflows.models import Run
from vre_workflows.spec import step_name
from vre_workflows.workspace import RunPaths, inside

ENGINE_STEP = {"snakemake": "snakemake", "cwl": "cwltool"}


class LocalWorkflowBackend:
    """Plans and executes runs locally.

    Serial steps run one command at a time (as REANA's serial engine does, ``bash -c`` in the
    workspace) in the step's image through the container runtime, or on the host when the
    image is missing and the deployment allows it. Snakemake and CWL workflows run through
    their engines' command lines (host processes). Each step has a time limit; cancellation
    and time-outs kill the whole process group.
    """

    name = "local"
    slots_per_project: int | None = None
    survives_restart = False

    def __init__(self, settings: LocalExecutorSettings, runtime: ContainerRuntime) -> None:
        self._settings = settings
        self._runtime = runtime
        self.slots = settings.max_concurrent_runs

    @property
    def runtime(self) -> ContainerRuntime:
        """The container runtime in use."""
        return self._runtime

    @property
    def host_path(self) -> str:
        """PATH of steps that run on a host (also on Slurm's nodes)."""
        return self._settings.path

    def host_env(self, job: RunJob, step: StepPlan) -> dict[str, str]:
        """The environment of a step run on the host."""
        return self._host_env(job, step)

    def snakemake_argv(self, job: RunJob) -> list[str]:
        """The snakemake command line of a run (its workflow file in the workspace)."""
        return self._snakemake_argv(job, inside(job.workspace, str(job.spec["workflow"]["file"])))

    # ------------------------------------------------------------------ planning

    async def plan(self, request: PlanRequest) -> Plan:
        """How each step will run, and the warnings to record on the run.

        Raises 422 problems when a step's image is missing and host execution is off, or
        when the workflow type cannot run locally.
        """
        steps, warnings = await self.plan_steps(request.workflow_type, request.spec, request.steps)
        return Plan(steps=steps, warnings=warnings)

    async def plan_steps(
        self,
        workflow_type: str,
        spec: dict[str, Any],
        expanded_steps: list[dict[str, Any]],
        *,
        where: str = "locally",
    ) -> tuple[list[StepPlan], list[str]]:
        """Steps planned for execution on this machine's runtime (also Slurm's job scripts)."""
        if workflow_type == "yadage":
            raise LocalExecutionRefusedError(
                "yadage workflows run only on REANA: submit with backend 'reana'",
                errors=[
                    {
                        "loc": ["spec", "workflow", "type"],
                        "msg": "yadage is not supported by the local executor",
                        "type": "backend",
                    }
                ],
            )
        if workflow_type in ENGINE_STEP:
            return self._plan_engine(workflow_type, spec)
        return await self._plan_serial(expanded_steps, where=where)

    def _timeout(self, step: dict[str, Any]) -> float:
        declared = step.get("kubernetes_job_timeout")
        value = float(declared) if isinstance(declared, int) and declared > 0 else None
        value = value or self._settings.default_step_timeout_seconds
        return min(value, self._settings.max_step_timeout_seconds)

    async def _plan_serial(
        self, steps: list[dict[str, Any]], *, where: str
    ) -> tuple[list[StepPlan], list[str]]:
        plans: list[StepPlan] = []
        warnings: list[str] = []
        problems: list[dict[str, Any]] = []
        for index, step in enumerate(steps):
            name = step_name(step, index)
            image = step.get("environment")
            memory = step.get("kubernetes_memory_limit")
            try:
                memory_bytes(memory)
            except ValueError as exc:
                raise InvalidSpecificationError(
                    str(exc),
                    errors=[
                        {
                            "loc": [
                                "spec",
                                "workflow",
                                "specification",
                                "steps",
                                index,
                                "kubernetes_memory_limit",
                            ],
                            "msg": str(exc),
                            "type": "value_error",
                        }
                    ],
                ) from exc
            backend = step.get("compute_backend")
            if backend and backend != "kubernetes" and where == "locally":
                warnings.append(f"step {name}: compute_backend {backend} is ignored locally")
            execution = "host"
            if isinstance(image, str) and image:
                check = await self._runtime.check_image(image)
                if check.available:
                    execution = "container"
                elif self._settings.allow_host_execution:
                    warnings.append(
                        f"step {name}: {check.reason}. It runs on the host instead "
                        "(allowed by this deployment)."
                    )
                else:
                    problems.append(
                        {
                            "loc": [
                                "spec",
                                "workflow",
                                "specification",
                                "steps",
                                index,
                                "environment",
                            ],
                            "msg": check.reason or f"image {image} is not available",
                            "type": "image",
                            "image": image,
                        }
                    )
            elif not self._settings.allow_host_execution:
                problems.append(
                    {
                        "loc": ["spec", "workflow", "specification", "steps", index],
                        "msg": "the step names no image and host execution is not allowed",
                        "type": "image",
                    }
                )
            uid = step.get("kubernetes_uid")
            plans.append(
                StepPlan(
                    position=index,
                    name=name,
                    commands=[str(c) for c in step.get("commands", [])],
                    execution=execution,  # type: ignore[arg-type]
                    image=image if isinstance(image, str) else None,
                    timeout_seconds=self._timeout(step),
                    memory_limit=memory,
                    user=str(uid) if isinstance(uid, int) else None,
                    options=dict(step),
                )
            )
        if problems:
            images = ", ".join(sorted({str(p.get("image")) for p in problems if p.get("image")}))
            raise ImageUnavailableError(
                f"{len(problems)} step(s) cannot run here: "
                + (f"missing image(s) {images}. " if images else "")
                + problems[0]["msg"],
                errors=problems,
            )
        return plans, warnings

    def _plan_engine(
        self, workflow_type: str, spec: dict[str, Any]
    ) -> tuple[list[StepPlan], list[str]]:
        engine = ENGINE_STEP[workflow_type]
        if not self._settings.allow_host_execution:
            raise LocalExecutionRefusedError(
                f"{workflow_type} workflows run locally through {engine} on the host (their "
                "container images are not used here), and this deployment does not allow "
                "host execution: submit with backend 'reana', or allow it "
                "(VRE_WORKFLOWS_LOCAL__ALLOW_HOST_EXECUTION=true)",
            )
        workflow_file = spec["workflow"].get("file")
        if not isinstance(workflow_file, str):
            raise InvalidSpecificationError(
                f"a {workflow_type} workflow needs workflow.file",
                errors=[
                    {"loc": ["spec", "workflow", "file"], "msg": "required", "type": "missing"}
                ],
            )
        warning = (
            f"{workflow_type} workflow: run by {engine} on the host; container images it "
            "declares are not used by the local executor"
        )
        plan = StepPlan(
            position=0,
            name=engine,
            commands=[],
            execution="engine",
            timeout_seconds=self._settings.default_step_timeout_seconds,
        )
        return [plan], [warning]

    # ------------------------------------------------------------------ the port

    async def prepare(self, job: RunJob, reporter: RunReporter) -> None:
        """A local run starts when it gets its slot: recorded as running before staging."""
        job.paths.create()
        await reporter.running()

    async def submit(self, job: RunJob, reporter: RunReporter) -> None:
        """Nothing to hand over: the steps run here."""

    async def collect(self, job: RunJob) -> None:
        """The outputs are in the workspace already."""

    async def cancel(self, job: RunJob) -> None:
        """Processes exist only inside ``watch``, which the cancel event stops."""
        job.cancel.set()

    async def discard(self, run: Run, requester: str) -> None:
        """Nothing is kept outside the run's folder."""

    def interrupted_detail(self, run: Run) -> str:
        """Why the run could not go on."""
        return (
            f"the workflows service restarted while the run was {run.status}; its "
            "processes did not survive"
        )

    async def clean_up(self, run_ids: set[str]) -> None:
        """Kill the processes and containers interrupted runs left behind."""
        if not run_ids:
            return
        await asyncio.to_thread(kill_leftovers, run_ids)
        for run_id in run_ids:
            await self._runtime.stop_run(run_id)

    async def ping(self) -> None:
        """Always ready."""

    async def aclose(self) -> None:
        """Nothing to close."""

    async def watch(self, job: RunJob, reporter: RunReporter) -> ExecutionOutcome:
        """Run the planned steps here (see ``execute``)."""
        return await self.execute(job, reporter)

    # ------------------------------------------------------------------ execution

    def _host_env(self, job: RunJob, step: StepPlan) -> dict[str, str]:
        env = {
            "PATH": self._settings.path,
            "HOME": str(job.workspace),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": str(job.tmp_dir),
            "XDG_CACHE_HOME": str(job.tmp_dir / "cache"),
            "REANA_WORKSPACE": str(job.workspace),
            "VRE_RUN_ID": job.run_id,
            "VRE_STEP": step.name,
        }
        env.update(self._settings.step_env)
        return env

    def _container_env(self, job: RunJob, step: StepPlan) -> dict[str, str]:
        env = {
            "HOME": "/workspace",
            "LANG": "C.UTF-8",
            "REANA_WORKSPACE": "/workspace",
            "VRE_RUN_ID": job.run_id,
            "VRE_STEP": step.name,
        }
        env.update(self._settings.step_env)
        return env

    async def execute(self, job: RunJob, reporter: RunReporter) -> ExecutionOutcome:
        """Run the planned steps in order; stop at the first failure or on cancellation."""
        paths_logs = job.logs_dir
        paths_logs.mkdir(parents=True, exist_ok=True)
        (job.tmp_dir / "cache").mkdir(parents=True, exist_ok=True)
        failure = await self.pull_images(job, reporter)
        if failure is not None:
            return failure
        for step in job.steps:
            if step.status == "finished":
                continue
            if job.cancel.is_set():
                return ExecutionOutcome("cancelled", "cancelled before step " + step.name)
            await reporter.step_started(step.position)
            log_path = RunPaths(job.logs_dir.parent).step_log(step.position)
            if step.execution == "engine":
                status, code, message = await self._run_engine(job, step, log_path)
            else:
                status, code, message = await self._run_serial_step(job, step, log_path)
            await reporter.step_finished(step.position, status, code, message)
            if status != "finished":
                return ExecutionOutcome(status, message)  # type: ignore[arg-type]
        return ExecutionOutcome("finished")

    async def pull_images(self, job: RunJob, reporter: RunReporter) -> ExecutionOutcome | None:
        """Pull the images the run's container steps need (by the pull policy) before any step
        runs; the first that cannot be pulled fails the run with the registry's answer."""
        seen: set[str] = set()
        for step in job.steps:
            if step.execution != "container" or step.status == "finished" or not step.image:
                continue
            if step.image in seen:
                continue
            seen.add(step.image)
            check = await self._runtime.check_image(step.image)
            if not check.pull:
                continue
            log_path = job.paths.step_log(step.position)
            _log_line(
                log_path,
                f"[vre] pulling {step.image} (pull policy {self._runtime.pull_policy})",
            )
            try:
                await self._runtime.pull(step.image, log_path)
            except VreError as exc:
                _log_line(log_path, f"[vre] {exc.detail}")
                await reporter.step_finished(step.position, "failed", None, exc.detail)
                return ExecutionOutcome(
                    "failed", exc.detail, error={"title": exc.title, "detail": exc.detail}
                )
            _log_line(log_path, f"[vre] pulled {step.image}")
        return None

    async def _run_serial_step(
        self, job: RunJob, step: StepPlan, log_path: Path
    ) -> tuple[str, int | None, str | None]:
        started = time.monotonic()
        code: int | None = 0
        for number, command in enumerate(step.commands, start=1):
            remaining = step.timeout_seconds - (time.monotonic() - started)
            if remaining <= 0:
                return "failed", None, _timeout_message(step)
            where = f"container {step.image}" if step.execution == "container" else "host"
            _log_line(
                log_path,
                f"[vre] step {step.name}, command {number}/{len(step.commands)} ({where}): "
                f"{command}",
            )
            on_stop = None
            if step.execution == "container":
                assert step.image is not None
                container = f"{container_prefix(job.run_id)}-{step.position}-{uuid.uuid4().hex[:6]}"
                argv = self._runtime.command(
                    container_name=container,
                    image=step.image,
                    workspace=job.workspace,
                    command=command,
                    env=self._container_env(job, step),
                    memory_limit_bytes=memory_bytes(step.memory_limit),
                    user=step.user,
                )
                env = getattr(self._runtime, "process_env", None) or self._host_env(job, step)

                async def stop(name: str = container) -> None:
                    await self._runtime.stop(name)

                on_stop = stop
            else:
                argv = ["bash", "-c", _with_memory_limit(command, step.memory_limit)]
                env = self._host_env(job, step)
            result = await run_in_group(
                argv,
                cwd=job.workspace,
                env=env,
                log_path=log_path,
                time_limit=remaining,
                cancel=job.cancel,
                grace=self._settings.kill_grace_seconds,
                on_stop=on_stop,
            )
            code = result.exit_code
            if result.cancelled:
                _log_line(log_path, "[vre] cancelled: the step's processes were killed")
                return "cancelled", code, "cancelled by the user"
            if result.timed_out:
                _log_line(log_path, f"[vre] {_timeout_message(step)}")
                return "failed", code, _timeout_message(step)
            if code != 0:
                message = f"command {number} exited with code {code}"
                _log_line(log_path, f"[vre] {message}")
                return "failed", code, message
        return "finished", code, None

    async def _run_engine(
        self, job: RunJob, step: StepPlan, log_path: Path
    ) -> tuple[str, int | None, str | None]:
        workflow_file = str(job.spec["workflow"]["file"])
        try:
            target = inside(job.workspace, workflow_file)
        except ValueError as exc:
            return "failed", None, str(exc)
        if not target.is_file():
            message = f"the workflow file {workflow_file} is not in the workspace"
            _log_line(log_path, f"[vre] {message}")
            return "failed", None, message
        if job.workflow_type == "snakemake":
            argv = self._snakemake_argv(job, target)
        else:
            argv = self._cwltool_argv(job, target)
        _log_line(log_path, "[vre] " + " ".join(shlex.quote(a) for a in argv))
        env = self._host_env(job, step)
        result = await run_in_group(
            argv,
            cwd=job.workspace,
            env=env,
            log_path=log_path,
            time_limit=step.timeout_seconds,
            cancel=job.cancel,
            grace=self._settings.kill_grace_seconds,
        )
        if result.cancelled:
            return "cancelled", result.exit_code, "cancelled by the user"
        if result.timed_out:
            return "failed", result.exit_code, _timeout_message(step)
        if result.exit_code != 0:
            return "failed", result.exit_code, f"{step.name} exited with code {result.exit_code}"
        return "finished", 0, None

    def _snakemake_argv(self, job: RunJob, snakefile: Path) -> list[str]:
        argv = [
            *self._settings.snakemake,
            "--cores",
            "1",
            "--snakefile",
            str(snakefile),
            "--directory",
            str(job.workspace),
            "--nocolor",
            "--printshellcmds",
        ]
        parameters = dict(job.parameters)
        config_file = parameters.get("input")
        if isinstance(config_file, str) and _is_workspace_file(job.workspace, config_file):
            argv += ["--configfile", config_file]
            parameters.pop("input")
        if parameters:
            argv.append("--config")
            for key, value in parameters.items():
                text = value if isinstance(value, str) else json.dumps(value)
                argv.append(f"{key}={text}")
        return argv

    def _cwltool_argv(self, job: RunJob, workflow: Path) -> list[str]:
        job_file = job.parameters.get("input")
        if isinstance(job_file, str) and _is_workspace_file(job.workspace, job_file):
            job_path = str(inside(job.workspace, job_file))
        else:
            job_path = str(job.tmp_dir / "cwl-job.json")
            Path(job_path).write_text(json.dumps(job.parameters), encoding="utf-8")
        return [
            *self._settings.cwltool,
            "--no-container",
            "--disable-color",
            "--outdir",
            str(job.workspace / "outputs"),
            "--tmpdir-prefix",
            str(job.tmp_dir) + "/",
            "--tmp-outdir-prefix",
            str(job.tmp_dir) + "/",
            str(workflow),
            job_path,
        ]


def _timeout_message(step: StepPlan) -> str:
    return f"step {step.name} exceeded its time limit of {step.timeout_seconds:g} s and was killed"


def _log_line(path: Path, line: str) -> None:
    with path.open("ab") as handle:
        handle.write(line.encode() + b"\n")


def _is_workspace_file(workspace: Path, relative: str) -> bool:
    try:
        return inside(workspace, relative).is_file()
    except ValueError:
        return False


def _with_memory_limit(command: str, memory_limit: str | None) -> str:
    """On the host, a step's memory limit is approximated by ``ulimit -v`` (address space)."""
    limit = memory_bytes(memory_limit)
    if not limit:
        return command
    kib = max(1, limit // 1024)
    return f"ulimit -v {kib} && {command}"
