"""Ports of the workflows service: the Data Lake, container runtimes, and what executors report.

Implementations: ``datalake.ServiceDatalakeBackend`` (the datalake service's API through
``vre_common.clients.datalake``), ``containers.PodmanRuntime``, ``local.LocalWorkflowBackend``
and ``reana.ReanaClient``. Each speaks our models and raises our errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol


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
    ) -> list[str]:
        """The argv that runs ``command`` in ``image`` with ``workspace`` mounted."""
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
    """A step as the local executor will run it."""

    position: int
    name: str
    commands: list[str]
    execution: Literal["container", "host", "engine"]
    image: str | None = None
    timeout_seconds: float = 86400.0
    memory_limit: str | None = None
    user: str | None = None


@dataclass
class LocalJob:
    """Everything the local executor needs for one run."""

    run_id: str
    workflow_type: str
    spec: dict[str, Any]
    parameters: dict[str, Any]
    workspace: Path
    logs_dir: Path
    tmp_dir: Path
    steps: list[StepPlan]
    cancel: asyncio.Event = field(default_factory=asyncio.Event)


class StepReporter(Protocol):
    """Receives step progress from an executor (records it on the run)."""

    async def step_started(self, position: int) -> None:
        """The step started."""
        ...

    async def step_finished(
        self, position: int, status: str, exit_code: int | None, message: str | None
    ) -> None:
        """The step ended (finished, failed, cancelled)."""
        ...


@dataclass
class ExecutionOutcome:
    """How an execution ended."""

    status: StepOutcome
    message: str | None = None
