"""Builds the gateway's collaborators once (from settings) and per request (from a session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated

import anyio
import httpx
from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.db import Database
from vre_common.deps import CurrentUser
from vre_common.http import make_http_client
from vre_common.provenance.events import Event, IngestResult
from vre_common.settings import HttpClientSettings
from vre_gateway.backends.scopes import HttpScopeProvisioner, ScopeProvisioner
from vre_gateway.backends.search import (
    VO_TYPES,
    DatalakeDidSource,
    HttpListSource,
    SearchSource,
    catalogue_hit,
    deposition_hit,
    run_hit,
    vo_hit,
)
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
    """The HTTP search sources the settings enable (the projects source is added per request)."""
    sources: list[SearchSource] = []
    paths = settings.search.paths
    params = settings.search.query_params
    for name in settings.search.sources:
        base = settings.service_url(name)
        if name == "datalake":
            sources.append(DatalakeDidSource(base, http, max_scopes=settings.search.max_scopes))
        elif name == "catalogue":
            url = base + paths.get(name, "/software/search")
            sources.append(
                HttpListSource(
                    name,
                    "software",
                    url,
                    http,
                    catalogue_hit("/catalogue"),
                    query_param=params.get(name, "q"),
                )
            )
        elif name == "workflows":
            url = base + paths.get(name, "/runs")
            sources.append(
                HttpListSource(
                    name,
                    "run",
                    url,
                    http,
                    run_hit("/workflows"),
                    query_param=params.get(name, "name"),
                )
            )
        elif name == "zenodo":
            url = base + paths.get(name, "/depositions")
            sources.append(
                HttpListSource(
                    name,
                    "deposition",
                    url,
                    http,
                    deposition_hit("/zenodo"),
                    query_param=params.get(name),
                )
            )
        elif name == "ivoa":
            vo = HttpListSource(
                name,
                "vo-service",
                base + paths.get(name, "/search"),
                http,
                vo_hit("/ivoa"),
                query_param=params.get(name, "q"),
            )
            vo.types = VO_TYPES  # services and their tables
            sources.append(vo)
    return sources


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


class GatewayResources:
    """What lives as long as the app: the database, HTTP clients, ports."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        database: Database | None = None,
        provisioner: ScopeProvisioner | None = None,
        search_sources: Sequence[SearchSource] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database or Database(settings.database)
        self.http = make_http_client(HttpClientSettings(read_timeout=30.0))
        self.provisioner: ScopeProvisioner = provisioner or HttpScopeProvisioner(
            settings.service_url("datalake"),
            http=self.http,
            service_token=provisioner_token(settings.projects),
        )
        self.search_sources = (
            list(search_sources)
            if search_sources is not None
            else remote_search_sources(settings, self.http)
        )
        self.directory = InProcessProjectDirectory(self.database)
        self.event_sink = InProcessEventSink(self)
        self.known_users: set[tuple[str, str]] = set()

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self.http.aclose()
        await self.database.dispose()


class Services:
    """The gateway's domain services bound to one session (one request or one unit of work)."""

    def __init__(self, resources: GatewayResources, session: AsyncSession) -> None:
        settings = resources.settings
        self.session = session
        self.store = ProjectStore(session)
        self.access = AccessService(self.store)
        self.auditor = Auditor(AuditStore(session))
        self.projects = ProjectService(
            store=self.store,
            access=self.access,
            auditor=self.auditor,
            provisioner=resources.provisioner,
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
            sources=[ProjectSearchSource(self.store), *resources.search_sources]
            if "projects" in settings.search.sources
            else list(resources.search_sources),
            timeouts=settings.search.timeouts,
            default_timeout=settings.search.timeout_seconds,
            per_source_limit=settings.search.per_source_limit,
        )


class InProcessEventSink:
    """The embedded mode's event sink: ingests into the gateway's database directly."""

    def __init__(self, resources: GatewayResources) -> None:
        self.resources = resources

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        async with self.resources.database.transaction() as session:
            return await Services(self.resources, session).provenance.ingest(events)


# ----------------------------------------------------------------------------- dependencies


def get_resources(request: Request) -> GatewayResources:
    """The app's resources."""
    resources: GatewayResources = request.app.state.gateway
    return resources


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_resources(request).database.transaction() as session:
        yield session


# scope="function": commit before the response is sent, so a client never reads stale data
# and a failed commit is the request's error.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


def get_services(request: Request, session: SessionDep) -> Services:
    """The domain services for this request."""
    return Services(get_resources(request), session)


ServicesDep = Annotated[Services, Depends(get_services)]


async def known_user(request: Request, user: CurrentUser) -> Principal:
    """The caller, remembered (once per process) so members can be added by user name.

    In a short transaction of its own: the request's transaction must not take the database
    write lock before it needs to (project creation calls the datalake first).
    """
    resources = get_resources(request)
    seen = resources.known_users
    marker = (user.key, user.username)
    if marker not in seen:
        try:
            async with resources.database.transaction() as session:
                await ProjectStore(session).remember(user, datetime.now(UTC))
        except IntegrityError:
            pass  # a concurrent first request of the same user recorded it a moment ago
        if len(seen) > 100_000:
            seen.clear()
        seen.add(marker)
    return user


KnownUser = Annotated[Principal, Depends(known_user)]
