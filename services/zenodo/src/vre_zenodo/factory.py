"""Factory: builds every collaborator of the zenodo service once, and services per session."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import Database
from vre_common.jobs import JobSupervisor
from vre_common.link import GatewayLink
from vre_common.migrations import Migrations
from vre_common.policy import ProjectGate
from vre_common.provenance.recorder import ServiceEvents
from vre_zenodo.backends.base import (
    DatalakeConnector,
    SoftwareMetadataPort,
    WorkflowsPort,
    ZenodoPort,
)
from vre_zenodo.backends.vre import CatalogueClient, DatalakeServiceConnector, WorkflowsClient
from vre_zenodo.backends.zenodo import ZenodoBackend
from vre_zenodo.config import ZenodoSettings
from vre_zenodo.crypto import TokenCipher, cipher_from_settings
from vre_zenodo.services.credentials import CredentialService
from vre_zenodo.services.depositions import DepositionService, DepositionUploader
from vre_zenodo.services.imports import ImportRunner, ImportService
from vre_zenodo.services.records import RecordService
from vre_zenodo.services.reproductions import ReproductionService, ReproductionWorker
from vre_zenodo.storage.credentials import CredentialStore
from vre_zenodo.storage.depositions import DepositionStore
from vre_zenodo.storage.imports import ImportStore
from vre_zenodo.storage.reproductions import ReproductionStore
from vre_zenodo.storage.schema import PROVENANCE_OUTBOX

log = structlog.get_logger("vre.zenodo")


class Factory:
    """Long-lived collaborators (engine, HTTP pools, cipher, job supervisor)."""

    def __init__(
        self,
        settings: ZenodoSettings,
        *,
        database: Database,
        cipher: TokenCipher,
        zenodo: ZenodoPort,
        datalake: DatalakeConnector,
        workflows: WorkflowsPort,
        catalogue: SoftwareMetadataPort,
        link: GatewayLink,
    ) -> None:
        self.settings = settings
        self.link = link
        self.db = database
        self.cipher = cipher
        self.zenodo = zenodo
        self.datalake = datalake
        self.workflows = workflows
        self.catalogue = catalogue
        self.supervisor = JobSupervisor(settings.jobs.max_concurrent, service="zenodo")
        self.projects = ProjectGate(
            settings.projects.scope_prefix, service="zenodo", policy=link.policy
        )
        # Import and publish events join the transaction of the change they describe (the
        # import's final state, the deposition's publication) and are relayed to the gateway.
        self.events = ServiceEvents.for_service(
            PROVENANCE_OUTBOX, db=database, settings=settings.provenance
        )
        self.import_runner = ImportRunner(
            unit=self.unit,
            zenodo=zenodo,
            datalake=datalake,
            settings=settings.imports,
            jobs=settings.jobs,
            projects=self.projects,
            events=self.events,
        )
        self.reproduction_worker = ReproductionWorker(
            unit=self.unit,
            zenodo=zenodo,
            datalake=datalake,
            workflows=workflows,
            projects=self.projects,
            events=self.events,
        )
        self.uploader = DepositionUploader(
            unit=self.unit, zenodo=zenodo, datalake=datalake, jobs=settings.jobs
        )

    @classmethod
    def from_settings(cls, settings: ZenodoSettings, link: GatewayLink) -> Factory:
        """The production wiring (may create the credentials key file: call at start-up)."""
        return cls(
            settings,
            database=Database(settings.database),
            cipher=cipher_from_settings(settings),
            zenodo=ZenodoBackend(settings.zenodo),
            datalake=DatalakeServiceConnector(settings.datalake),
            workflows=WorkflowsClient(settings.workflows),
            catalogue=CatalogueClient(settings.catalogue),
            link=link,
        )

    def unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A unit of work outside a request (jobs): committed at the end, like a request."""
        return self.db.transaction()

    async def startup(self) -> None:
        """Migrate (or verify) the schema; mark jobs a previous process left running; relay
        events to the gateway."""
        await Migrations("zenodo").prepare(self.db.engine, self.settings.migrations)
        async with self.unit() as session:
            imports = await ImportStore(session).interrupt_active()
            uploads = await DepositionStore(session).interrupt_active()
            uploads += await ReproductionStore(session).interrupt_active()
        if imports or uploads:
            log.info("jobs_interrupted_at_start", imports=imports, uploads=uploads)
        self.events.start(self.link.event_sink)

    async def aclose(self) -> None:
        """Stop the jobs (each records its interruption), then close pools and the engine."""
        await self.supervisor.shutdown()
        await self.events.stop()
        for client in (self.zenodo, self.datalake, self.workflows, self.catalogue):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
        await self.db.dispose()

    # ------------------------------------------------------------------ services

    def credential_service(self, session: AsyncSession) -> CredentialService:
        """Credentials of the caller."""
        return CredentialService(
            store=CredentialStore(session),
            cipher=self.cipher,
            zenodo=self.zenodo,
            zenodo_url=self.settings.zenodo.url,
            verify=self.settings.verify_tokens,
        )

    def record_service(self) -> RecordService:
        """Records search."""
        return RecordService(
            zenodo=self.zenodo,
            result_window=self.settings.zenodo.result_window,
            doi_pattern=self.settings.zenodo.doi_pattern,
        )

    def import_service(self, session: AsyncSession) -> ImportService:
        """Imports of the caller."""
        return ImportService(
            session=session,
            store=ImportStore(session),
            credentials=self.credential_service(session),
            records=self.record_service(),
            zenodo=self.zenodo,
            supervisor=self.supervisor,
            runner=self.import_runner,
            settings=self.settings.imports,
            projects=self.projects,
        )

    def deposition_service(self, session: AsyncSession) -> DepositionService:
        """Depositions of the caller."""
        return DepositionService(
            session=session,
            store=DepositionStore(session),
            credentials=self.credential_service(session),
            zenodo=self.zenodo,
            datalake=self.datalake,
            workflows=self.workflows,
            catalogue=self.catalogue,
            supervisor=self.supervisor,
            uploader=self.uploader,
            max_files=self.settings.zenodo.max_files,
            settings=self.settings.publish,
            projects=self.projects,
            events=self.events,
        )

    def reproduction_service(self, session: AsyncSession) -> ReproductionService:
        """Reproductions of the caller."""
        return ReproductionService(
            session=session,
            store=ReproductionStore(session),
            records=self.record_service(),
            zenodo=self.zenodo,
            credentials=self.credential_service(session),
            supervisor=self.supervisor,
            worker=self.reproduction_worker,
            projects=self.projects,
        )
