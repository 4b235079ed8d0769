"""Builds every collaborator of the datalake service once, from settings."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.backends.rucio import RucioDatalakeBackend
from vre_datalake.backends.rucio_rest import RucioRest
from vre_datalake.config import DatalakeSettings, ssl_verify
from vre_datalake.services.catalogue import CatalogueService
from vre_datalake.services.dids import DidService
from vre_datalake.services.files import FileService
from vre_datalake.services.policy import OwnScopePolicy, ScopePolicy
from vre_datalake.services.resolve import ResolveService
from vre_datalake.services.rules import RuleService, UsageService
from vre_datalake.storage.base import StorageRouter
from vre_datalake.storage.posix import PosixStore
from vre_datalake.storage.webdav import WebdavStore


@dataclass(kw_only=True)
class Factory:
    """The service's object graph (one per app)."""

    settings: DatalakeSettings
    backend: DatalakeBackend
    storage: StorageRouter
    policy: ScopePolicy
    catalogue: CatalogueService
    dids: DidService
    files: FileService
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
                RucioRest(settings.rucio), settings=settings.rucio, accounts=settings.accounts
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
        policy = OwnScopePolicy(backend)
        static_token = store.webdav_token.get_secret_value() if store.webdav_token else None
        token_mode = settings.rucio.identity_mode == "token"

        def storage_token(actor: Actor) -> str | None:
            return actor.bearer if token_mode else static_token

        return cls(
            settings=settings,
            backend=backend,
            storage=storage,
            policy=policy,
            catalogue=CatalogueService(backend=backend),
            dids=DidService(backend=backend, policy=policy),
            files=FileService(
                backend=backend,
                policy=policy,
                storage=storage,
                settings=store,
                storage_token=storage_token,
            ),
            rules=RuleService(backend=backend, policy=policy),
            usage=UsageService(backend=backend),
            resolver=ResolveService(backend=backend, policy=policy, storage=storage),
            webdav_client=webdav_client,
        )

    async def aclose(self) -> None:
        """Close HTTP pools."""
        await self.backend.aclose()
        await self.webdav_client.aclose()
