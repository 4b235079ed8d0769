"""Build every collaborator of the workflows service once, from settings."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from vre_common.clients.datalake import DatalakeClient
from vre_common.crypto import TokenCipher
from vre_common.db import Database
from vre_common.link import GatewayLink
from vre_common.migrations import Migrations
from vre_workflows.backends.base import (
    BackendRegistry,
    ContainerRuntime,
    DatalakePort,
    WorkflowBackend,
)
from vre_workflows.backends.containers import NoContainerRuntime, PodmanRuntime
from vre_workflows.backends.datalake import ServiceDatalakeBackend, UnconfiguredDatalake
from vre_workflows.backends.local import LocalWorkflowBackend
from vre_workflows.backends.reana import ReanaClient, ReanaServers, ReanaWorkflowBackend
from vre_workflows.backends.slurm import SlurmCluster, SlurmWorkflowBackend
from vre_workflows.config import WorkflowsSettings
from vre_workflows.services.access import RunAccess
from vre_workflows.services.credentials import load_or_create_key, stored_tokens
from vre_workflows.services.files import RunFiles
from vre_workflows.services.outputs import OutputRegistrar
from vre_workflows.services.provenance import RunEvents
from vre_workflows.services.queue import RunManager, TicketVault
from vre_workflows.services.run_state import RunStateMachine
from vre_workflows.services.staging import InputStager
from vre_workflows.services.validation import LoaderSandbox, ValidationService
from vre_workflows.storage.schema import PROVENANCE_OUTBOX
from vre_workflows.validation.worker_client import ReanaValidatorWorker


@dataclass
class Factory:
    """The service's long-lived objects (its composition root)."""

    settings: WorkflowsSettings
    db: Database
    worker: ReanaValidatorWorker
    validation: ValidationService
    runtime: ContainerRuntime
    local: LocalWorkflowBackend
    servers: ReanaServers
    backends: BackendRegistry
    datalake: DatalakePort
    cipher: TokenCipher
    manager: RunManager
    files: RunFiles
    access: RunAccess
    events: RunEvents
    link: GatewayLink

    @classmethod
    def from_settings(
        cls,
        settings: WorkflowsSettings,
        link: GatewayLink,
        *,
        datalake: DatalakePort | None = None,
        runtime: ContainerRuntime | None = None,
    ) -> Factory:
        """Everything, chosen from settings (``datalake``/``runtime`` can be given by tests);
        project runs are authorized by the link's policy."""
        db = Database(settings.database)
        worker = ReanaValidatorWorker(
            settings.validator_python, timeout=settings.validator_timeout_seconds
        )
        if runtime is None:
            containers = settings.local.containers
            runtime = (
                PodmanRuntime(containers)
                if containers.runtime == "podman"
                else NoContainerRuntime()
            )
        local = LocalWorkflowBackend(settings.local, runtime)
        servers = ReanaServers(
            {name: ReanaClient(name, server) for name, server in settings.reana.servers.items()},
            settings.reana.default_server,
        )
        if datalake is None:
            if settings.datalake.url:
                datalake = ServiceDatalakeBackend(
                    DatalakeClient(settings.datalake.url, settings=settings.datalake.http)
                )
            else:
                datalake = UnconfiguredDatalake()
        cipher = TokenCipher(lambda: load_or_create_key(settings.reana, settings.data_dir))
        events = RunEvents.for_service(PROVENANCE_OUTBOX, db=db, settings=settings.provenance)
        access = RunAccess(link.policy)
        offered: list[WorkflowBackend] = [local]
        if servers.clients:
            offered.append(
                ReanaWorkflowBackend(settings.reana, servers, stored_tokens(db, cipher, servers))
            )
        if settings.slurm.enabled:
            offered.append(
                SlurmWorkflowBackend(
                    settings.slurm,
                    SlurmCluster(settings.slurm),
                    local=local,
                    runtime=runtime,
                    data_dir=settings.data_dir,
                )
            )
        backends = BackendRegistry(offered, settings.default_backend)
        manager = RunManager(
            state=RunStateMachine(db=db, events=events),
            backends=backends,
            stager=InputStager(datalake=datalake, prefer_link=settings.local.staging == "link"),
            outputs=OutputRegistrar(db=db, datalake=datalake, data_dir=settings.data_dir),
            vault=TicketVault(cipher, settings.data_dir),
            data_dir=settings.data_dir,
        )
        files = RunFiles(
            db=db, data_dir=settings.data_dir, access=access, poll_seconds=settings.log_poll_seconds
        )
        return cls(
            settings=settings,
            db=db,
            worker=worker,
            validation=validation_service(settings, worker),
            runtime=runtime,
            local=local,
            servers=servers,
            backends=backends,
            datalake=datalake,
            cipher=cipher,
            manager=manager,
            files=files,
            access=access,
            events=events,
            link=link,
        )

    async def prepare_database(self) -> None:
        """Upgrade the schema (run_migrations), or refuse an out-of-date one."""
        migrations = Migrations("workflows")
        if self.settings.run_migrations:
            await migrations.upgrade(self.db.engine)
        else:
            await migrations.require_current(self.db.engine)

    async def startup(self) -> None:
        """Database ready, interrupted runs recorded, workers started, events relayed."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.prepare_database()
        await self.manager.start()
        self.events.start(self.link.event_sink)

    async def aclose(self) -> None:
        """Stop runs and close every connection."""
        await self.manager.stop()
        await self.events.stop()
        await self.worker.aclose()
        for backend in self.backends.all():
            await backend.aclose()
        close = getattr(self.datalake, "aclose", None)
        if close is not None:
            await close()
        await self.db.dispose()


def validation_service(
    settings: WorkflowsSettings, worker: ReanaValidatorWorker
) -> ValidationService:
    """The validator, with REANA's loaders sandboxed, on the host or off (spec_loading)."""
    if settings.spec_loading == "off":
        return ValidationService(
            worker, loaders_off="loading specifications is turned off here (spec_loading=off)"
        )
    if settings.spec_loading == "host":
        return ValidationService(worker)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ValidationService(
            worker,
            loaders_off="REANA's loaders run the workflow's code, and this server has no "
            "sandbox for them (install bubblewrap)",
        )
    return ValidationService(worker, sandbox=LoaderSandbox(Path(bwrap)))
