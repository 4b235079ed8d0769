"""Builds every collaborator of the datalake service once, from settings."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import httpx

from vre_common.provenance import EventSink, HttpEventSink
from vre_datalake.backends.base import Actor, DatalakeBackend
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
from vre_datalake.storage.base import StorageRouter
from vre_datalake.storage.posix import PosixStore
from vre_datalake.storage.webdav import WebdavStore


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

    @classmethod
    def create(
        cls, settings: DatalakeSettings, *, backend: DatalakeBackend | None = None
    ) -> Factory:
        """Wire the Rucio backend (unless given), storage protocols and services."""
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
        policy = DatalakePolicy(backend, projects)
        recorder = ProvenanceRecorder(backend=backend, settings=settings.provenance)
        static_token = store.webdav_token.get_secret_value() if store.webdav_token else None
        token_mode = settings.rucio.identity_mode == "token"

        def storage_token(actor: Actor) -> str | None:
            return actor.bearer if token_mode else static_token

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
        )

    def http_event_sink(self) -> EventSink | None:
        """The distributed mode's sink: the gateway over HTTP with the service token."""
        settings = self.settings.provenance
        url = self.settings.gateway_url
        if url is None or (settings.service_token is None and settings.service_token_file is None):
            return None

        async def token() -> str:
            if settings.service_token_file is not None:
                return (await anyio.Path(settings.service_token_file).read_text()).strip()
            assert settings.service_token is not None
            return settings.service_token.get_secret_value()

        return HttpEventSink(url, token)

    async def aclose(self) -> None:
        """Stop background settling, then close HTTP pools."""
        await self.uploads.aclose()
        await self.backend.aclose()
        await self.webdav_client.aclose()
