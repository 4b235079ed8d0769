"""Factory: builds every collaborator of the ivoa service once."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.clients.datalake import DatalakeClient
from vre_common.db import Database
from vre_common.jobs import JobSupervisor
from vre_common.link import GatewayLink
from vre_common.migrations import Migrations
from vre_common.policy import ProjectGate
from vre_common.provenance.recorder import ServiceEvents
from vre_ivoa.backends.base import RegistryPort, VoServicePort
from vre_ivoa.backends.registry import RegTapRegistry
from vre_ivoa.backends.vo import VoServiceClient
from vre_ivoa.config import IvoaSettings
from vre_ivoa.services.catalog import ServiceCatalog
from vre_ivoa.services.queries import QueryRunner, QueryService
from vre_ivoa.storage.queries import QueryStore
from vre_ivoa.storage.schema import PROVENANCE_OUTBOX

log = structlog.get_logger("vre.ivoa")


class Factory:
    """Long-lived collaborators (engine, VO clients, datalake client, job supervisor)."""

    def __init__(
        self,
        settings: IvoaSettings,
        *,
        database: Database,
        clients: Mapping[str, VoServicePort],
        registry: RegistryPort | None,
        datalake: DatalakeClient | None,
        link: GatewayLink,
    ) -> None:
        self.settings = settings
        self.link = link
        self.db = database
        self.clients = dict(clients)
        self.registry = registry
        self.datalake = datalake
        self.supervisor = JobSupervisor(settings.jobs.max_concurrent, service="ivoa")
        self.projects = ProjectGate(
            settings.projects.scope_prefix, service="ivoa", policy=link.policy
        )
        # Query events join the transaction of the job's COMPLETED phase (outbox + relay).
        self.events = ServiceEvents.for_service(
            PROVENANCE_OUTBOX, db=database, settings=settings.provenance
        )
        self.catalog = ServiceCatalog(
            configs=settings.services,
            clients=self.clients,
            cache=settings.cache,
            registry=registry,
            registry_settings=settings.registry,
        )
        self.runner = QueryRunner(
            unit=self.unit,
            catalog=self.catalog,
            datalake=datalake,
            projects=self.projects,
            events=self.events,
            limits=settings.limits,
        )

    @classmethod
    def from_settings(cls, settings: IvoaSettings, link: GatewayLink) -> Factory:
        """The production wiring."""
        clients = {
            s.name: VoServiceClient(s, limits=settings.limits, http=settings.http)
            for s in settings.services
        }
        registry = (
            RegTapRegistry(settings.registry, limits=settings.limits, http=settings.http)
            if settings.registry.url
            else None
        )
        datalake = (
            DatalakeClient(settings.datalake.url, settings=settings.datalake.http)
            if settings.datalake.url
            else None
        )
        return cls(
            settings,
            database=Database(settings.database),
            clients=clients,
            registry=registry,
            datalake=datalake,
            link=link,
        )

    def unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A unit of work: committed at the end, rolled back on error."""
        return self.db.transaction()

    async def startup(self) -> None:
        """Migrate (or verify) the schema; mark jobs a previous process left running; relay
        events to the gateway."""
        await Migrations("ivoa").prepare(self.db.engine, self.settings.migrations)
        async with self.unit() as session:
            interrupted = await QueryStore(session).interrupt_active()
        if interrupted:
            log.info("queries_interrupted_at_start", queries=interrupted)
        self.events.start(self.link.event_sink)

    async def aclose(self) -> None:
        """Stop the jobs (each records its end), then close pools and the engine."""
        await self.supervisor.shutdown()
        await self.events.stop()
        for client in (*self.clients.values(), self.registry, self.datalake):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
        await self.db.dispose()

    def query_service(self) -> QueryService:
        """The queries service."""
        return QueryService(
            unit=self.unit,
            catalog=self.catalog,
            runner=self.runner,
            supervisor=self.supervisor,
            projects=self.projects,
            datalake=self.datalake,
            limits=self.settings.limits,
            default_rse=self.settings.default_rse,
        )
