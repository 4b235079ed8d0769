"""Ports of the workflows service: the Data Lake, container runtimes, and workflow backends.

Implementations: ``datalake.ServiceDatalakeBackend`` (the datalake service's API through
``vre_common.clients.datalake``), ``containers.PodmanRuntime``, and the ``WorkflowBackend``s
``local.LocalWorkflowBackend``, ``reana.ReanaWorkflowBackend`` and
``slurm.SlurmWorkflowBackend``. Each speaks our models and raises our errors; the run service
and the run queue never ask which backend they hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from vre_workflows.models import Run, Step
from vre_workflows.workspace import RunPaths


@dataclass(frozen=True)
class ResolvedInput:
    """One file behind a requested DID, with checksums and where it can be read."""

    requested: str
    scope: str
    name: str
    bytes: int
    adler32: str | None
    md5: str | None
    local_paths: tuple[Path, ...] = ()
    """POSIX replicas readable on this machine (hard link or copy instead of download)."""

    @property
    def did(self) -> str:
        """``scope:name``."""
        return f"{self.scope}:{self.name}"


@dataclass(frozen=True)
class RegisteredFile:
    """A file the Data Lake registered, with the checksums it recorded."""

    did: str
    bytes: int
    adler32: str
    md5: str


class DatalakePort(Protocol):
    """The Data Lake as the workflows service needs it, acting with the caller's token."""

    async def resolve(self, token: str, dids: Sequence[str]) -> list[ResolvedInput]:
        """The files behind DIDs (files, datasets, containers); 404 if a DID is unknown."""
        ...

    async def own_scope(self, token: str) -> str | None:
        """The caller's own scope (``user.<account>``); None where no Data Lake is configured."""
        ...

    def download(
        self, token: str, scope: str, name: str
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Open a file for streaming (the service verifies checksums on full reads)."""
        ...

    async def create_dataset(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Create a dataset with metadata."""
        ...

    async def upload(
        self,
        token: str,
        scope: str,
        name: str,
        path: Path,
        *,
        md5: str,
        size: int,
        rse: str | None,
        dataset: str | None,
        metadata: dict[str, Any],
    ) -> RegisteredFile:
        """Stream a local file into the Data Lake (checksum verified) and attach it."""
        ...

    async def set_metadata(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Set metadata keys on a DID."""
        ...


@dataclass(frozen=True)
class ImageCheck:
    """Whether a step's image can be used here, and if not, why and what to do."""

    image: str
    available: bool
    reason: str | None = None
    pull: bool = False
    """Not in local storage yet: pulled before the run's first step."""


class ContainerRuntime(Protocol):
    """Runs a step's commands inside its image."""

    name: str

    async def check_image(self, image: str) -> ImageCheck:
        """Is ``image`` available locally (no pulls)?"""
        ...

    def command(
        self,
        *,
        container_name: str,
        image: str,
        workspace: Path,
        command: str,
        env: dict[str, str],
        memory_limit_bytes: int | None,
        user: str | None,
        pull: str = "never",
    ) -> list[str]:
        """The argv that runs ``command`` in ``image`` with ``workspace`` mounted (``pull``:
        podman's --pull, for job scripts that pull on the node)."""
        ...

    async def pull(self, image: str, log_path: Path) -> None:
        """Pull ``image``, its progress appended to ``log_path``; the registry's answer as
        a 422 ``ImageUnavailableError`` when it fails (missing image, registry down)."""
        ...

    @property
    def pull_policy(self) -> str:
        """never | missing | always."""
        ...

    async def stop(self, container_name: str) -> None:
        """Kill and remove a container (its client process may already be gone)."""
        ...

    async def stop_run(self, run_id: str) -> None:
        """Kill and remove every container a run started (after a crash of the service)."""
        ...


StepOutcome = Literal["finished", "failed", "cancelled"]


@dataclass
class StepPlan:
    """A step as a backend will run it (rebuilt from the run's record, so it survives restarts).

    ``options`` are the step's own fields from the reana.yaml (``slurm_partition``,
    ``kubernetes_memory_limit``, …) that a backend may map onto its resources.
    """

    position: int
    name: str
    commands: list[str]
    execution: Literal["container", "host", "engine", "reana"]
    image: str | None = None
    timeout_seconds: float = 86400.0
    memory_limit: str | None = None
    user: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"


@dataclass
class PlanRequest:
    """What a backend is asked to plan at submission (inside the submitting request)."""

    run_id: str
    run_name: str
    owner: str
    workflow_type: str
    spec: dict[str, Any]
    steps: list[dict[str, Any]]
    """Serial steps with parameters expanded (empty for engine workflows)."""
    parameters: dict[str, Any]
    server: str | None = None
    """The backend server the submission named (REANA), if any."""


@dataclass
class Plan:
    """A backend's answer to a submission: its steps, warnings, and what it created for it."""

    steps: list[StepPlan]
    warnings: list[str] = field(default_factory=list)
    backend_ids: dict[str, str] = field(default_factory=dict)
    server: str | None = None
    credential: str | None = None
    """A backend credential the run needs while it lives (REANA's token; never stored)."""


@dataclass
class RunJob:
    """Everything a backend needs to carry one run (built from the run's record)."""

    run_id: str
    owner: str
    project: str | None
    workflow_type: str
    spec: dict[str, Any]
    parameters: dict[str, Any]
    paths: RunPaths
    steps: list[StepPlan]
    backend_ids: dict[str, str] = field(default_factory=dict)
    server: str | None = None
    credential: str | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: bool = False
    """True when a restarted service picked the run up where the backend still runs it."""

    @property
    def workspace(self) -> Path:
        """The run's workspace."""
        return self.paths.workspace

    @property
    def logs_dir(self) -> Path:
        """The run's log folder."""
        return self.paths.logs

    @property
    def tmp_dir(self) -> Path:
        """The run's scratch folder."""
        return self.paths.tmp


class StepReporter(Protocol):
    """Receives step progress from a backend (records it on the run)."""

    async def step_started(self, position: int) -> None:
        """The step started."""
        ...

    async def step_finished(
        self, position: int, status: str, exit_code: int | None, message: str | None
    ) -> None:
        """The step ended (finished, failed, cancelled)."""
        ...


class RunReporter(StepReporter, Protocol):
    """Everything a backend reports while it carries a run."""

    async def running(self) -> bool:
        """The run started on the backend; False if it is no longer queued (cancelled)."""
        ...

    async def steps_seen(self, steps: Sequence[Step]) -> None:
        """The backend's own list of steps (jobs) replaces the planned one."""
        ...

    async def backend_ids(self, ids: dict[str, str]) -> None:
        """Record identifiers on the backend (merged into the run's ``backend_ids``)."""
        ...

    async def warning(self, text: str) -> None:
        """Record a warning on the run."""
        ...


@dataclass
class ExecutionOutcome:
    """How an execution ended; ``error`` is a problem (type, title, detail) for failures."""

    status: StepOutcome
    message: str | None = None
    error: dict[str, Any] | None = None


class WorkflowBackend(Protocol):
    """Where a run's steps execute: plan → prepare → submit → watch → collect (→ cancel).

    - ``plan`` runs inside the submitting request: it refuses what the backend cannot run
      (4xx), answers 503 when the backend is down, and may create the run remotely (REANA).
    - ``prepare`` places the run's folders (before inputs are staged into the workspace).
    - ``submit`` hands the staged workspace to the backend (upload, start).
    - ``watch`` follows the run to its end, reporting steps, logs and backend ids; it stops
      the run itself when ``job.cancel`` is set and then answers ``cancelled``.
    - ``collect`` brings the declared outputs into the workspace (a no-op where the
      workspace is shared).
    - ``cancel`` stops what the backend holds for a run that is not being watched.
    """

    name: str
    slots: int
    """Runs this backend carries at once; more wait in FIFO order."""
    slots_per_project: int | None
    """Runs one project (or one user's personal runs) may have on it at once."""
    survives_restart: bool
    """Runs go on while the service is away, and a restarted service picks them up again."""

    async def plan(self, request: PlanRequest) -> Plan:
        """How the run will execute; raises our errors when it cannot."""
        ...

    async def prepare(self, job: RunJob, reporter: RunReporter) -> None:
        """Create the run's folders where the backend needs them."""
        ...

    async def submit(self, job: RunJob, reporter: RunReporter) -> None:
        """Hand the staged run to the backend."""
        ...

    async def watch(self, job: RunJob, reporter: RunReporter) -> ExecutionOutcome:
        """Follow the run until it ends (also a run picked up again after a restart)."""
        ...

    async def collect(self, job: RunJob) -> None:
        """Bring the declared outputs of a finished run into the workspace."""
        ...

    async def cancel(self, job: RunJob) -> None:
        """Stop the run on the backend (outside ``watch``)."""
        ...

    async def discard(self, run: Run, requester: str) -> None:
        """Remove what the backend keeps of a finished run (on delete, as ``requester``)."""
        ...

    def interrupted_detail(self, run: Run) -> str:
        """Why an active run that cannot be picked up is recorded as interrupted."""
        ...

    async def clean_up(self, run_ids: set[str]) -> None:
        """Remove what interrupted runs left behind (processes, containers)."""
        ...

    async def ping(self) -> None:
        """Readiness: raise a ``BackendError`` when the backend does not answer."""
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...


class BackendRegistry:
    """The workflow backends this deployment offers, by name (chosen once, in the factory)."""

    def __init__(self, backends: Sequence[WorkflowBackend], default: str) -> None:
        self._backends = {b.name: b for b in backends}
        self.default = default

    @property
    def names(self) -> list[str]:
        """The configured backends."""
        return sorted(self._backends)

    def all(self) -> list[WorkflowBackend]:
        """Every configured backend."""
        return list(self._backends.values())

    def find(self, name: str) -> WorkflowBackend | None:
        """The backend called ``name``, if configured."""
        return self._backends.get(name)

    def get(self, name: str) -> WorkflowBackend:
        """The backend called ``name``; 422 naming the configured ones otherwise."""
        from vre_workflows.errors import BackendNotConfiguredError

        backend = self._backends.get(name)
        if backend is None:
            raise BackendNotConfiguredError(
                f"the backend {name!r} is not configured on this deployment; it offers: "
                + ", ".join(self.names),
                errors=[{"loc": ["backend"], "msg": "not configured", "type": "backend"}],
            )
        return backend
