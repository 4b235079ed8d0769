"""The gateway's composition root: its collaborators once (from settings), its services per
session, and the link it gives the services it mounts. Its dependencies: handlers/deps.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import anyio
import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal, TokenValidator
from vre_common.db import Database
from vre_common.http import make_http_client
from vre_common.link import GatewayLink, MountedServices
from vre_common.policy import Policy
from vre_common.provenance.events import Event, IngestResult
from vre_common.search import SEARCH_ROUTES
from vre_common.settings import HttpClientSettings
from vre_gateway.backends.scopes import (
    HttpScopeProvisioner,
    InProcessScopeProvisioner,
    ScopeProvisioner,
)
from vre_gateway.backends.search import SearchSource, declared_source
from vre_gateway.config import GatewaySettings, ProjectSettings
from vre_gateway.services.access import AccessService, InProcessProjectDirectory
from vre_gateway.services.audit import Auditor
from vre_gateway.services.members import MembershipService
from vre_gateway.services.projects import ProjectService
from vre_gateway.services.provenance import ProvenanceService
from vre_gateway.services.search import ProjectSearchSource, SearchService
from vre_gateway.storage.audit import AuditStore
from vre_gateway.storage.projects import ProjectStore
from vre_gateway.storage.provenance import ProvenanceStore


def remote_search_sources(settings: GatewaySettings, http: httpx.AsyncClient) -> list[SearchSource]:
    """The sources of the services' declared search routes (vre_common.search) the settings
    enable (the projects source is added per request)."""
    search = settings.search
    return [
        declared_source(
            route,
            settings.service_url(route.service),
            http,
            path=search.paths.get(route.service),
            query_param=search.query_params.get(route.service, route.query_param),
            max_scopes=search.max_scopes,
        )
        for route in (SEARCH_ROUTES[name] for name in search.sources if name in SEARCH_ROUTES)
    ]


def provisioner_token(settings: ProjectSettings) -> Callable[[], Awaitable[str]] | None:
    """The service token the HTTP provisioner creates scopes with (None: the caller's)."""
    token, path = settings.provisioner_token, settings.provisioner_token_file
    if token is None and path is None:
        return None

    async def read() -> str:
        if path is not None:
            return (await anyio.Path(path).read_text()).strip()
        assert token is not None
        return token.get_secret_value()

    return read


class Factory:
    """The gateway's composition root: what lives as long as the app (the database, HTTP
    clients, ports) and the :class:`GatewayLink` it gives the services it mounts."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        validator: TokenValidator,
        database: Database | None = None,
        provisioner: ScopeProvisioner | None = None,
        search_sources: Sequence[SearchSource] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database or Database(settings.database)
        self.http = make_http_client(HttpClientSettings(read_timeout=30.0))
        self.mounted = MountedServices()
        self.provisioner: ScopeProvisioner = provisioner or InProcessScopeProvisioner(
            self.mounted,
            otherwise=HttpScopeProvisioner(
                settings.service_url("datalake"),
                http=self.http,
                service_token=provisioner_token(settings.projects),
            ),
        )
        self.search_sources = (
            list(search_sources)
            if search_sources is not None
            else remote_search_sources(settings, self.http)
        )
        self.directory = InProcessProjectDirectory(self.database)
        self.event_sink = InProcessEventSink(self)
        # What every service mounted in the gateway's process is built with (vre_common.link).
        self.link = GatewayLink(
            validator=validator,
            policy=Policy(self.directory),
            event_sink=self.event_sink,
            mounted=self.mounted,
        )
        self.known_users: set[tuple[str, str]] = set()

    def services(self, session: AsyncSession) -> Services:
        """The domain services bound to ``session`` (one request or one unit of work)."""
        return Services(self, session)

    async def remember(self, user: Principal) -> None:
        """Remember a caller (once per process) so members can be added by user name.

        In a short transaction of its own: the request's transaction must not take the
        database write lock before it needs to (project creation calls the datalake first).
        """
        marker = (user.key, user.username)
        if marker in self.known_users:
            return
        try:
            async with self.database.transaction() as session:
                await ProjectStore(session).remember(user, datetime.now(UTC))
        except IntegrityError:
            pass  # a concurrent first request of the same user recorded it a moment ago
        if len(self.known_users) > 100_000:
            self.known_users.clear()
        self.known_users.add(marker)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self.http.aclose()
        await self.database.dispose()


class Services:
    """The gateway's domain services bound to one session (one request or one unit of work)."""

    def __init__(self, factory: Factory, session: AsyncSession) -> None:
        settings = factory.settings
        self.session = session
        self.store = ProjectStore(session)
        self.access = AccessService(self.store)
        self.auditor = Auditor(AuditStore(session))
        self.projects = ProjectService(
            store=self.store,
            access=self.access,
            auditor=self.auditor,
            provisioner=factory.provisioner,
            settings=settings.projects,
        )
        self.members = MembershipService(
            store=self.store, access=self.access, auditor=self.auditor, settings=settings.projects
        )
        self.provenance = ProvenanceService(
            store=ProvenanceStore(session),
            projects=self.store,
            access=self.access,
            auditor=self.auditor,
            settings=settings.provenance,
            admin_groups=settings.auth.admin_groups,
        )
        self.search = SearchService(
            store=self.store,
            sources=[ProjectSearchSource(self.store), *factory.search_sources]
            if "projects" in settings.search.sources
            else list(factory.search_sources),
            timeouts=settings.search.timeouts,
            default_timeout=settings.search.timeout_seconds,
            per_source_limit=settings.search.per_source_limit,
        )


class InProcessEventSink:
    """The embedded mode's event sink: ingests into the gateway's database directly."""

    def __init__(self, factory: Factory) -> None:
        self.factory = factory

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        async with self.factory.database.transaction() as session:
            return await self.factory.services(session).provenance.ingest(events)
