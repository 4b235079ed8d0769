"""Slurm: ``SlurmCluster`` (the cluster through its client commands) and ``SlurmWorkflowBackend``.

Why the client commands and not ``slurmrestd``: every submit host has sbatch/squeue/scontrol/
scancel with the cluster's slurm.conf and munge key, while slurmrestd is an optional daemon
that needs JWT or munge auth of its own and is absent from many sites (and from Debian's
one-node setup the tests use). ``sbatch --parsable`` gives the job id, ``scontrol show job
-o`` the state, reason and exit code (also without accounting, while ``MinJobAge`` keeps the
record), ``scancel`` stops a job. Each command has a time limit; a controller that does not
answer is a 503.

A serial run's steps become one batch job each, submitted when the previous one completed,
so a step's own ``slurm_partition``, ``slurm_time`` and resource requests apply. The job
script runs the step's commands in its image through podman (as the local executor does), or
on the node where host execution is allowed; its output goes straight to the step's log file
on the shared workspace, so followers see it live. Job ids are recorded on the run as they are
created (``backend_ids["job.<step>"]``): a restarted service watches the same jobs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from vre_common.errors import BackendUnavailableError
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
from vre_workflows.backends.local import LocalWorkflowBackend
from vre_workflows.backends.process import run_in_group
from vre_workflows.config import SlurmSettings
from vre_workflows.errors import InvalidSpecificationError, SlurmRequestError
from vre_workflows.models import Run

log = structlog.get_logger("vre.workflows.slurm")

_UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "zero bytes were transmitted",
    "slurm_persist_conn_open",
    "communication connection failure",
    "unable to establish controller",
)
_TIME = re.compile(r"^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+(?::\d{1,2}(?::\d{1,2})?)?)$")
_PAIR = re.compile(r"(\w+)=(\S*)")
_RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}
_PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING"}
_WHY = {
    "TIMEOUT": "it reached its time limit",
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "it was preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "it reached its deadline",
    "OUT_OF_MEMORY": "it ran out of memory",
    "CANCELLED": "it was cancelled on the cluster (not through the VRE)",
    "FAILED": "its script failed",
}


@dataclass(frozen=True)
class JobState:
    """What Slurm says about a job."""

    job_id: str
    state: str
    reason: str
    exit_code: int | None
    signal: int | None

    @property
    def pending(self) -> bool:
        """Not started yet."""
        return self.state in _PENDING

    @property
    def running(self) -> bool:
        """Started and not ended."""
        return self.state in _RUNNING

    @property
    def ended(self) -> bool:
        """Ended, one way or another."""
        return not (self.pending or self.running)


def slurm_time_valid(value: str) -> bool:
    """A time limit sbatch accepts: minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    return bool(_TIME.match(value.strip()))


def _unreachable(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _UNREACHABLE)


class SlurmCluster:
    """One Slurm cluster through its client commands (see the module docstring)."""

    def __init__(self, settings: SlurmSettings) -> None:
        self._settings = settings
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": os.environ.get("HOME", "/"),
        }
        if settings.slurm_conf is not None:
            env["SLURM_CONF"] = str(settings.slurm_conf)
        self.env = env

    def _exe(self, name: str) -> str:
        if self._settings.bin_dir is not None:
            return str(self._settings.bin_dir / name)
        return shutil.which(name, path=self.env["PATH"]) or name

    async def run(self, name: str, *args: str) -> tuple[int, str, str]:
        """Run one client command; (exit code, stdout, stderr). 503 if it cannot run or hangs."""
        try:
            process = await asyncio.create_subprocess_exec(
                self._exe(name),
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
            )
        except OSError as exc:
            raise BackendUnavailableError(
                f"the Slurm command {name} cannot run on this host ({exc.strerror})"
            ) from exc
        try:
            async with asyncio.timeout(self._settings.command_timeout_seconds):
                out, err = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise BackendUnavailableError(
                f"the Slurm controller did not answer {name} within "
                f"{self._settings.command_timeout_seconds:g} s"
            ) from None
        return process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def ping(self) -> None:
        """``scontrol ping``: the controller answers (503 otherwise)."""
        code, out, err = await self.run("scontrol", "ping")
        if code != 0 or "UP" not in out:
            detail = (out + err).strip().splitlines()
            raise BackendUnavailableError(
                "the Slurm controller does not answer"
                + (f": {detail[-1][:300]}" if detail else ""),
                retry_after=10,
            )

    async def partition_exists(self, name: str) -> bool:
        """Does the cluster know this partition?"""
        code, out, err = await self.run("scontrol", "show", "partition", "-o", name)
        if code == 0 and f"PartitionName={name}" in out:
            return True
        if _unreachable(err):
            raise BackendUnavailableError(f"the Slurm controller does not answer: {err.strip()}")
        return False

    async def submit(self, script: Path, options: list[str]) -> str:
        """``sbatch --parsable``: the job id. 503 when the controller is down, 422 when
        Slurm refuses the job (its message)."""
        code, out, err = await self.run("sbatch", "--parsable", *options, str(script))
        if code != 0:
            message = err.strip() or out.strip() or f"sbatch exited with code {code}"
            if _unreachable(message):
                raise BackendUnavailableError(f"Slurm did not take the job: {message[:500]}")
            raise SlurmRequestError(f"Slurm refused the job: {message[:500]}")
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise BackendUnavailableError(f"sbatch answered without a job id: {out[:200]!r}")
        return job_id

    async def state(self, job_id: str) -> JobState | None:
        """The job's state (None: Slurm no longer knows the job)."""
        code, out, err = await self.run("scontrol", "show", "job", "-o", job_id)
        if code != 0:
            if "invalid job id" in err.lower():
                return None
            raise BackendUnavailableError(
                f"Slurm did not answer about job {job_id}: {(err or out).strip()[:300]}"
            )
        fields = dict(_PAIR.findall(out))
        exit_code: int | None = None
        sig: int | None = None
        if ":" in fields.get("ExitCode", ""):
            first, _, second = fields["ExitCode"].partition(":")
            exit_code = int(first) if first.isdigit() else None
            sig = int(second) if second.isdigit() else None
        return JobState(
            job_id=job_id,
            state=fields.get("JobState", "UNKNOWN"),
            reason=fields.get("Reason", "None"),
            exit_code=exit_code,
            signal=sig,
        )

    async def cancel(self, job_id: str) -> None:
        """``scancel``: stop the job (a job already ended is fine)."""
        code, _, err = await self.run("scancel", job_id)
        if code != 0 and _unreachable(err):
            raise BackendUnavailableError(f"Slurm did not take the cancellation: {err.strip()}")


class SlurmWorkflowBackend:
    """Runs' steps as Slurm batch jobs on a shared workspace (see the module docstring)."""

    name = "slurm"
    survives_restart = True

    def __init__(
        self,
        settings: SlurmSettings,
        cluster: SlurmCluster,
        *,
        local: LocalWorkflowBackend,
        runtime: ContainerRuntime,
        data_dir: Path,
    ) -> None:
        self._settings = settings
        self.cluster = cluster
        self._local = local
        self._runtime = runtime
        self._data_dir = data_dir
        self.slots = settings.max_active_runs
        self.slots_per_project: int | None = settings.max_runs_per_project

    # ------------------------------------------------------------------ planning

    async def plan(self, request: PlanRequest) -> Plan:
        """Steps planned as on the local executor (image or host), their Slurm fields
        checked (422 with their location), the controller asked (503 when it is down)."""
        if request.workflow_type not in ("serial", "snakemake"):
            raise InvalidSpecificationError(
                f"{request.workflow_type} workflows do not run on Slurm here: submit them with "
                "backend 'local' or 'reana'",
                errors=[
                    {
                        "loc": ["spec", "workflow", "type"],
                        "msg": "not supported on Slurm",
                        "type": "backend",
                    }
                ],
            )
        await self.cluster.ping()
        steps, warnings = await self._local.plan_steps(
            request.workflow_type, request.spec, request.steps, where="on Slurm"
        )
        problems: list[dict[str, Any]] = []
        for index, step in enumerate(request.steps):
            problems += await self._check_fields(index, step)
        if problems:
            raise InvalidSpecificationError(
                f"{len(problems)} Slurm field(s) cannot be used: {problems[0]['msg']}",
                errors=problems,
            )
        for step_plan in steps:
            if step_plan.execution == "engine":
                warnings.append(
                    "snakemake workflow: the rules run as Slurm jobs (snakemake's Slurm executor) "
                    "on the host's software, not in their container images"
                )
        return Plan(steps=steps, warnings=warnings)

    async def _check_fields(self, index: int, step: dict[str, Any]) -> list[dict[str, Any]]:
        loc: list[str | int] = ["spec", "workflow", "specification", "steps", index]
        problems: list[dict[str, Any]] = []
        backend = step.get("compute_backend")
        if backend not in (None, "slurmcern", "kubernetes"):
            problems.append(
                {
                    "loc": [*loc, "compute_backend"],
                    "msg": f"compute_backend {backend} cannot be used in a Slurm run",
                    "type": "backend",
                }
            )
        partition = step.get("slurm_partition") or self._settings.default_partition
        if partition is not None:
            allowed = self._settings.partitions
            if not isinstance(partition, str) or (allowed and partition not in allowed):
                problems.append(
                    {
                        "loc": [*loc, "slurm_partition"],
                        "msg": f"partition {partition!r} is not offered to the VRE"
                        + (f" (allowed: {', '.join(allowed)})" if allowed else ""),
                        "type": "slurm",
                    }
                )
            elif not await self.cluster.partition_exists(partition):
                problems.append(
                    {
                        "loc": [*loc, "slurm_partition"],
                        "msg": f"the Slurm cluster has no partition {partition!r}",
                        "type": "slurm",
                    }
                )
        limit = step.get("slurm_time")
        if limit is not None and not (
            isinstance(limit, str | int) and slurm_time_valid(str(limit))
        ):
            problems.append(
                {
                    "loc": [*loc, "slurm_time"],
                    "msg": f"{limit!r} is not a Slurm time limit (minutes, or M:S, H:M:S, D-H:M)",
                    "type": "slurm",
                }
            )
        cpus = step.get("kubernetes_cpu_request")
        if cpus is not None and _cpus(cpus) is None:
            problems.append(
                {
                    "loc": [*loc, "kubernetes_cpu_request"],
                    "msg": f"{cpus!r} is not a CPU quantity such as 2 or 500m",
                    "type": "value_error",
                }
            )
        return problems

    # ------------------------------------------------------------------ the port

    def _shared(self, run_id: str) -> Path | None:
        root = self._settings.workspace_root
        if root is None or root.resolve() == self._data_dir.resolve():
            return None
        return root / run_id

    async def prepare(self, job: RunJob, reporter: RunReporter) -> None:
        """Folders on the shared file system; the run's own folders point there."""
        shared = self._shared(job.run_id)
        job.paths.root.mkdir(parents=True, exist_ok=True)
        if shared is not None:
            await asyncio.to_thread(_point_to_shared, job.paths.root, shared)
        job.paths.create()

    async def submit(self, job: RunJob, reporter: RunReporter) -> None:
        """Jobs are submitted step by step while the run is watched."""

    async def collect(self, job: RunJob) -> None:
        """The workspace is shared: the outputs are there."""

    async def cancel(self, job: RunJob) -> None:
        """``scancel`` every job the run has on the cluster."""
        for key, job_id in job.backend_ids.items():
            if key.startswith("job."):
                with contextlib.suppress(BackendUnavailableError):
                    await self.cluster.cancel(job_id)

    async def discard(self, run: Run, requester: str) -> None:
        """Remove the run's folder on the shared file system."""
        shared = self._shared(run.id)
        if shared is not None:
            await asyncio.to_thread(shutil.rmtree, shared, True)

    def interrupted_detail(self, run: Run) -> str:
        """Unused: Slurm runs are picked up again."""
        return f"the workflows service restarted while the run was {run.status}"

    async def clean_up(self, run_ids: set[str]) -> None:
        """Nothing runs on the service's host."""

    async def ping(self) -> None:
        """Readiness: the controller answers."""
        await self.cluster.ping()

    async def aclose(self) -> None:
        """Nothing to close."""

    # ------------------------------------------------------------------ watching

    async def watch(self, job: RunJob, reporter: RunReporter) -> ExecutionOutcome:
        """Submit each step's job in turn and follow it; stop at the first that fails."""
        for step in job.steps:
            if step.status in ("finished", "skipped"):
                continue
            if job.cancel.is_set():
                return ExecutionOutcome("cancelled", "cancelled by the user")
            if step.execution == "engine":
                outcome = await self._snakemake(job, step, reporter)
            else:
                outcome = await self._step(job, step, reporter)
            if outcome.status != "finished":
                return outcome
        return ExecutionOutcome("finished")

    async def _step(self, job: RunJob, step: StepPlan, reporter: RunReporter) -> ExecutionOutcome:
        key = f"job.{step.position}"
        job_id = job.backend_ids.get(key)
        if job_id is None:
            job_id = await self._bear_outage(job, lambda: self._submit_step(job, step))
            if job_id is None:
                return ExecutionOutcome("cancelled", "cancelled by the user")
            job.backend_ids[key] = job_id
            await reporter.backend_ids({key: job_id})
            log.info("slurm_job_submitted", run_id=job.run_id, step=step.position, job_id=job_id)
        started = step.status == "running"
        cancel_sent = False
        while True:
            if job.cancel.is_set() and not cancel_sent:
                cancel_sent = True
                with contextlib.suppress(BackendUnavailableError):
                    await self.cluster.cancel(job_id)
            state = await self._bear_outage(job, lambda: self.cluster.state(job_id), quiet=True)
            if state is None and not cancel_sent:
                message = (
                    f"Slurm no longer knows job {job_id} of step {step.name} (its record was "
                    "purged while nobody watched it): its outcome is unknown"
                )
                await reporter.step_finished(step.position, "failed", None, message)
                return ExecutionOutcome("failed", message)
            if state is not None and (state.running or state.ended) and not started:
                started = True
                await reporter.running()
                await reporter.step_started(step.position)
            if state is None or state.ended:
                return await self._ended(job, step, state, reporter, cancel_sent)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_seconds):
                    await job.cancel.wait()

    async def _ended(
        self,
        job: RunJob,
        step: StepPlan,
        state: JobState | None,
        reporter: RunReporter,
        cancel_sent: bool,
    ) -> ExecutionOutcome:
        if cancel_sent and (state is None or state.state == "CANCELLED" or state.exit_code != 0):
            _log_line(job.paths.step_log(step.position), "[vre] cancelled: scancel")
            await reporter.step_finished(step.position, "cancelled", None, "cancelled by the user")
            return ExecutionOutcome("cancelled", "cancelled by the user")
        assert state is not None
        if state.state == "COMPLETED" and state.exit_code == 0:
            await reporter.step_finished(step.position, "finished", 0, None)
            return ExecutionOutcome("finished")
        why = _WHY.get(state.state, f"it ended {state.state}")
        if state.state == "FAILED" and state.exit_code:
            why = f"its command exited with code {state.exit_code}"
        reason = f", reason {state.reason}" if state.reason not in ("None", "") else ""
        message = f"Slurm job {state.job_id} (step {step.name}) ended {state.state}{reason}: {why}"
        _log_line(job.paths.step_log(step.position), f"[vre] {message}")
        await reporter.step_finished(step.position, "failed", state.exit_code, message)
        return ExecutionOutcome(
            "failed", message, error={"title": "Run failed on Slurm", "detail": message}
        )

    async def _bear_outage(self, job: RunJob, call: Any, *, quiet: bool = False) -> Any:
        """Call the cluster; while the controller does not answer, retry until
        ``outage_seconds`` have passed (then the 503 fails the run). None when cancelled."""
        failing_since: float | None = None
        while True:
            try:
                return await call()
            except BackendUnavailableError as exc:
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= self._settings.outage_seconds:
                    raise
                log.warning(
                    "slurm_unreachable",
                    run_id=job.run_id,
                    error=exc.detail,
                    failing_for=round(now - failing_since, 1),
                )
            if job.cancel.is_set() and not quiet:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_seconds):
                    await job.cancel.wait()
            if job.cancel.is_set() and not quiet:
                return None

    # ------------------------------------------------------------------ job scripts

    def _options(self, job: RunJob, step: StepPlan) -> list[str]:
        log_path = job.paths.step_log(step.position).resolve()
        options = [
            f"--job-name=vre-{job.run_id}",
            f"--chdir={job.workspace.resolve()}",
            f"--output={log_path}",
            "--open-mode=append",
            "--export=NONE",
            "--nodes=1",
            "--ntasks=1",
        ]
        fields = step.options
        partition = fields.get("slurm_partition") or self._settings.default_partition
        if partition:
            options.append(f"--partition={partition}")
        limit = fields.get("slurm_time")
        if limit is None and self._settings.default_time_minutes:
            limit = self._settings.default_time_minutes
        if limit is not None:
            options.append(f"--time={limit}")
        memory = memory_bytes(step.memory_limit)
        if memory:
            options.append(f"--mem={max(1, math.ceil(memory / 1024**2))}M")
        cpus = _cpus(fields.get("kubernetes_cpu_request"))
        if cpus:
            options.append(f"--cpus-per-task={cpus}")
        if self._settings.account:
            options.append(f"--account={self._settings.account}")
        return options

    def _script(self, job: RunJob, step: StepPlan) -> str:
        workspace = job.workspace.resolve()
        tmp = job.tmp_dir.resolve()
        env = {
            "PATH": self._local.host_path,
            "HOME": str(workspace),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": str(tmp),
            "REANA_WORKSPACE": str(workspace),
            "VRE_RUN_ID": job.run_id,
            "VRE_STEP": step.name,
        }
        runtime_env = getattr(self._runtime, "process_env", {})
        for name in ("CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF"):
            if runtime_env.get(name):
                env[name] = runtime_env[name]
        lines = [
            "#!/bin/bash",
            f"# VRE run {job.run_id}, step {step.position} ({step.name}): written by the VRE",
            *(f"export {k}={shlex.quote(v)}" for k, v in env.items()),
            f"cd {shlex.quote(str(workspace))} || exit 1",
        ]
        total = len(step.commands)
        for number, command in enumerate(step.commands, start=1):
            where = f"container {step.image}" if step.execution == "container" else "host"
            banner = (
                f"[vre] step {step.name}, command {number}/{total} ({where}, Slurm job "
                f"$SLURM_JOB_ID on $(hostname)): {command}"
            )
            if step.execution == "container":
                assert step.image is not None
                argv = self._runtime.command(
                    container_name=f"{container_prefix(job.run_id)}-{step.position}-{number}",
                    image=step.image,
                    workspace=workspace,
                    command=command,
                    env={
                        "HOME": "/workspace",
                        "LANG": "C.UTF-8",
                        "REANA_WORKSPACE": "/workspace",
                        "VRE_RUN_ID": job.run_id,
                        "VRE_STEP": step.name,
                    },
                    memory_limit_bytes=memory_bytes(step.memory_limit),
                    user=step.user,
                    pull=self._runtime.pull_policy,
                )
                run = shlex.join(argv)
            else:
                run = shlex.join(["bash", "-c", command])
            lines += [
                f'echo "{_dq(banner)}"',
                run,
                "code=$?",
                f'if [ "$code" -ne 0 ]; then echo "[vre] command {number} exited with code '
                '$code"; exit "$code"; fi',
            ]
        return "\n".join(lines) + "\n"

    async def _submit_step(self, job: RunJob, step: StepPlan) -> str:
        scripts = job.paths.root / "slurm"
        scripts.mkdir(parents=True, exist_ok=True)
        script = scripts / f"step-{step.position}.sh"
        await asyncio.to_thread(script.write_text, self._script(job, step), "utf-8")
        script.chmod(0o700)
        job.paths.step_log(step.position).parent.mkdir(parents=True, exist_ok=True)
        return await self.cluster.submit(script.resolve(), self._options(job, step))

    # ------------------------------------------------------------------ snakemake

    async def _snakemake(
        self, job: RunJob, step: StepPlan, reporter: RunReporter
    ) -> ExecutionOutcome:
        """snakemake on the submit host, its rules as Slurm jobs (its Slurm executor plugin).

        A hard time limit and the whole process group killed at the end: snakemake can hang
        ignoring SIGTERM when an inner ``srun`` fails (recipes/batch-systems.md).
        """
        await reporter.running()
        await reporter.step_started(step.position)
        log_path = job.paths.step_log(step.position)
        argv = [
            *self._local.snakemake_argv(job),
            "--executor",
            "slurm",
            "--jobs",
            str(self._settings.snakemake_jobs),
            "--slurm-no-account",
            "--slurm-status-command",
            "squeue",
            "--slurm-init-seconds-before-status-checks",
            str(self._settings.snakemake_first_status_seconds),
            "--latency-wait",
            "5",
        ]
        if self._settings.default_partition:
            argv += ["--default-resources", f"slurm_partition={self._settings.default_partition}"]
        _log_line(log_path, "[vre] " + shlex.join(argv))
        env = {**self._local.host_env(job, step), **self.cluster.env}
        path = [str(Path(argv[0]).parent), env.get("PATH", ""), "/usr/bin", "/bin"]
        conf = self.cluster.env.get("SLURM_CONF")
        if conf:
            # The jobstep plugin drops SLURM_* (SLURM_CONF too) before its inner srun: an srun
            # first on PATH puts the cluster's configuration back.
            path.insert(0, str(await asyncio.to_thread(_srun_wrapper, job.tmp_dir, conf)))
        env["PATH"] = os.pathsep.join(path)
        result = await run_in_group(
            argv,
            cwd=job.workspace,
            env=env,
            log_path=log_path,
            time_limit=self._settings.snakemake_timeout_seconds,
            cancel=job.cancel,
            grace=2.0,
        )
        if result.cancelled:
            await self._cancel_named(job)
            await reporter.step_finished(step.position, "cancelled", None, "cancelled by the user")
            return ExecutionOutcome("cancelled", "cancelled by the user")
        if result.timed_out or result.exit_code != 0:
            await self._cancel_named(job)
            message = (
                f"snakemake exceeded {self._settings.snakemake_timeout_seconds:g} s and was killed"
                if result.timed_out
                else f"snakemake exited with code {result.exit_code}"
            )
            await reporter.step_finished(step.position, "failed", result.exit_code, message)
            return ExecutionOutcome("failed", message)
        await reporter.step_finished(step.position, "finished", 0, None)
        return ExecutionOutcome("finished")

    async def _cancel_named(self, job: RunJob) -> None:
        """Jobs snakemake left on the cluster (it names them after its run id)."""
        with contextlib.suppress(BackendUnavailableError):
            code, out, _ = await self.cluster.run("squeue", "-h", "-o", "%i %k")
            if code == 0:
                for line in out.splitlines():
                    job_id, _, comment = line.partition(" ")
                    if job.run_id in comment:
                        await self.cluster.cancel(job_id)


def _srun_wrapper(root: Path, conf: str) -> Path:
    """``<run tmp>/slurm-bin/srun`` (on the shared file system): the real srun with
    ``SLURM_CONF`` set; returns the folder."""
    folder = root / "slurm-bin"
    folder.mkdir(parents=True, exist_ok=True)
    real = shutil.which("srun") or "/usr/bin/srun"
    wrapper = folder / "srun"
    wrapper.write_text(
        f'#!/bin/sh\nexport SLURM_CONF={shlex.quote(conf)}\nexec {shlex.quote(real)} "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return folder.resolve()


def _point_to_shared(root: Path, shared: Path) -> None:
    """Make ``root``'s workspace, logs and tmp symlinks into ``shared`` (what was there moves)."""
    for name in ("workspace", "logs", "tmp"):
        target = shared / name
        target.mkdir(parents=True, exist_ok=True)
        link = root / name
        if link.is_symlink():
            continue
        if link.is_dir():
            for entry in link.iterdir():
                shutil.move(entry, target / entry.name)
            link.rmdir()
        link.symlink_to(target, target_is_directory=True)


def _cpus(value: Any) -> int | None:
    """A Kubernetes CPU quantity (2, "1.5", "500m") as whole CPUs for --cpus-per-task."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return max(1, math.ceil(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            amount = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            return None
        return max(1, math.ceil(amount)) if amount > 0 else None
    return None


def _dq(text: str) -> str:
    """Quote for a double-quoted shell string that keeps ``$SLURM_JOB_ID`` and ``$(hostname)``."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    out = out.replace("$", "\\$")
    return out.replace("\\$SLURM_JOB_ID", "$SLURM_JOB_ID").replace("\\$(hostname)", "$(hostname)")


def _log_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(line.encode() + b"\n")
