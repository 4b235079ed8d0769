"""Builds every collaborator of the catalogue once, from settings."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from vre_catalogue.backends.base import ZenodoRecordsSource
from vre_catalogue.backends.zenodo import HttpZenodoRecordsSource
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.services.access import AccessPolicy
from vre_catalogue.services.harvest import BackgroundTasks, HarvestService
from vre_catalogue.services.software import SoftwareService
from vre_catalogue.storage.search import search_index_for
from vre_catalogue.storage.software import SoftwareStore
from vre_common.db import Database
from vre_common.link import GatewayLink
from vre_common.migrations import Migrations
from vre_common.policy import RequestPolicy


class Factory:
    """The catalogue's object graph: database, search index, Zenodo source, services."""

    def __init__(
        self,
        settings: CatalogueSettings,
        link: GatewayLink,
        *,
        records_source: ZenodoRecordsSource | None = None,
    ) -> None:
        self.settings = settings
        self.link = link
        self.db = Database(settings.database)
        self.search = search_index_for(self.db.dialect)
        self.access = AccessPolicy(
            curator_groups=settings.curator_groups, admin_groups=settings.auth.admin_groups
        )
        self.tasks = BackgroundTasks()
        self.records_source = records_source or HttpZenodoRecordsSource(settings.zenodo)
        self.harvest = HarvestService(
            db=self.db,
            search=self.search,
            source=self.records_source,
            access=self.access,
            settings=settings.zenodo,
            tasks=self.tasks,
            settle=timedelta(seconds=settings.zenodo.settle_seconds),
        )

    def software_service(self, session: AsyncSession, token: str | None) -> SoftwareService:
        """The software service bound to a request's session; project-owned entries are
        authorized by the link's policy with the caller's ``token`` (no policy: no projects)."""
        policy = self.link.policy
        projects = RequestPolicy(policy, token) if policy is not None else None
        return SoftwareService(
            store=SoftwareStore(session, self.search),
            access=self.access,
            export=self.settings.export,
            facet_limit=self.settings.facet_limit,
            projects=projects,
        )

    async def startup(self) -> None:
        """Migrate (or verify) the schema, then fail jobs a previous process left behind."""
        await Migrations("catalogue").prepare(self.db.engine, self.settings.migrations)
        await self.harvest.abandon_interrupted()

    async def check_database(self) -> None:
        """Readiness: the database answers."""
        async with self.db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def aclose(self) -> None:
        """Stop background jobs, close connections."""
        await self.tasks.aclose()
        await self.records_source.aclose()
        await self.db.dispose()
