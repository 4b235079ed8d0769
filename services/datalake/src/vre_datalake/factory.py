"""Builds every collaborator of the datalake service once, from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import structlog

from vre_common.client_credentials import ClientCredentialsToken
from vre_common.db import Database
from vre_common.link import GatewayLink
from vre_common.migrations import Migrations
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.backends.rse.base import StorageRouter
from vre_datalake.backends.rse.posix import PosixStore
from vre_datalake.backends.rse.webdav import WebdavStore
from vre_datalake.backends.rucio import RucioDatalakeBackend, RucioRest
from vre_datalake.config import DatalakeSettings, ssl_verify
from vre_datalake.services.catalogue import CatalogueService
from vre_datalake.services.dids import DidService
from vre_datalake.services.files import FileService
from vre_datalake.services.policy import DatalakePolicy, ProjectScopes
from vre_datalake.services.provenance import ProvenanceRecorder
from vre_datalake.services.resolve import ResolveService
from vre_datalake.services.rules import RuleService, UsageService
from vre_datalake.services.scopes import ScopeService
from vre_datalake.services.uploads import UploadService

log = structlog.get_logger("vre.datalake.policy")


@dataclass(kw_only=True)
class Factory:
    """The service's object graph (one per app)."""

    settings: DatalakeSettings
    backend: DatalakeBackend
    storage: StorageRouter
    policy: DatalakePolicy
    provenance: ProvenanceRecorder
    scopes: ScopeService
    catalogue: CatalogueService
    dids: DidService
    files: FileService
    uploads: UploadService
    rules: RuleService
    usage: UsageService
    resolver: ResolveService
    webdav_client: httpx.AsyncClient
    database: Database | None
    link: GatewayLink
    storage_tokens: ClientCredentialsToken | None = None
    _refresher: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: DatalakeSettings,
        link: GatewayLink,
        *,
        backend: DatalakeBackend | None = None,
    ) -> Factory:
        """Wire the Rucio backend (unless given), storage protocols and services; project
        scopes are authorized by the link's policy."""
        if backend is None:
            backend = RucioDatalakeBackend(
                RucioRest(settings.rucio),
                settings=settings.rucio,
                accounts=settings.accounts,
                reserved_account_prefixes=[settings.projects.accounts],
            )
        store = settings.storage
        webdav_client = httpx.AsyncClient(
            timeout=httpx.Timeout(store.webdav_timeout, connect=10.0),
            verify=ssl_verify(store.webdav_verify),
            follow_redirects=True,
        )
        storage = StorageRouter(
            [
                PosixStore(chunk_size=store.chunk_size, fsync=store.fsync),
                WebdavStore(webdav_client, chunk_size=store.chunk_size),
            ]
        )
        projects = ProjectScopes(settings.projects)
        policy = DatalakePolicy(backend, projects, link.policy)
        # the datalake's own database holds only its outbox, when configured so
        database = Database(settings.database) if settings.provenance.outbox == "database" else None
        recorder = ProvenanceRecorder(
            backend=backend, settings=settings.provenance, database=database
        )
        static_token = store.webdav_token.get_secret_value() if store.webdav_token else None
        token_mode = settings.rucio.identity_mode == "token"
        storage_tokens = (
            ClientCredentialsToken(store.webdav_client) if store.webdav_client else None
        )

        def storage_token(actor: Actor) -> str | None:
            if token_mode:
                return actor.bearer
            if storage_tokens is not None:  # kept fresh by the app's lifespan
                return storage_tokens.current
            return static_token

        return cls(
            settings=settings,
            backend=backend,
            storage=storage,
            policy=policy,
            provenance=recorder,
            scopes=ScopeService(
                backend=backend,
                projects=projects,
                settings=settings.projects,
                accounts=settings.accounts,
                admin_groups=settings.auth.admin_groups,
            ),
            catalogue=CatalogueService(backend=backend, policy=policy),
            dids=DidService(backend=backend, policy=policy, recorder=recorder),
            files=FileService(
                backend=backend,
                policy=policy,
                storage=storage,
                settings=store,
                storage_token=storage_token,
            ),
            uploads=UploadService(
                backend=backend,
                policy=policy,
                storage=storage,
                settings=store,
                usage_cache_seconds=settings.rucio.usage_cache_seconds,
                storage_token=storage_token,
                recorder=recorder,
            ),
            rules=RuleService(backend=backend, policy=policy, projects=projects),
            usage=UsageService(backend=backend, policy=policy, projects=projects),
            resolver=ResolveService(backend=backend, policy=policy, storage=storage),
            webdav_client=webdav_client,
            database=database,
            link=link,
            storage_tokens=storage_tokens,
        )

    async def startup(self) -> None:
        """The outbox's schema, the storage token kept fresh, events relayed to the gateway."""
        await self.prepare_database()
        if self.link.policy is None:
            log.warning(
                "project_scopes_without_directory", prefix=self.settings.projects.scope_prefix
            )
        if self.storage_tokens is not None:  # the storage token, renewed in time
            self._refresher = asyncio.create_task(self.storage_tokens.keep_fresh())
        await self.provenance.start(self.link.event_sink)

    async def prepare_database(self) -> None:
        """Bring the outbox's schema up (or verify it), when the outbox is in the database."""
        if self.database is None:
            return
        mode = self.settings.migrations
        if mode == "auto":
            mode = "verify" if self.settings.gateway_url else "upgrade"
        await Migrations("datalake").prepare(self.database.engine, mode)

    async def aclose(self) -> None:
        """Stop the relay and background settling, then close HTTP pools and the database."""
        await self.provenance.stop()
        if self._refresher is not None:
            self._refresher.cancel()
        await self.uploads.aclose()
        await self.backend.aclose()
        await self.webdav_client.aclose()
        if self.database is not None:
            await self.database.dispose()
