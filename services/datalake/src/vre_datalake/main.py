"""The datalake service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.readiness import install_readiness
from vre_datalake.backends.base import DatalakeBackend
from vre_datalake.config import DatalakeSettings
from vre_datalake.factory import Factory
from vre_datalake.handlers import catalogue, dids, files, rules

DESCRIPTION = """\
The Data Lake on Rucio: scopes, DIDs (files, datasets, containers) and their metadata,
streaming upload and download, replicas, replication rules, usage against quotas, and a
DID resolver for the other services.

Each caller acts as a Rucio account derived from their IAM identity and owns the scope
`user.<account>`. Large listings stream as NDJSON with `Accept: application/x-ndjson`.
"""


def create_app(
    settings: DatalakeSettings | None = None,
    *,
    validator: TokenValidator | None = None,
    backend: DatalakeBackend | None = None,
) -> FastAPI:
    """Build the datalake app; the gateway passes its own validator when it mounts the app."""
    settings = settings or DatalakeSettings()
    factory = Factory.create(settings, backend=backend)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await factory.aclose()

    app = create_base_app(
        service="datalake",
        title="VRE datalake",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.factory = factory
    app.state.validator = validator or build_validator(settings.auth)
    for module in (catalogue, dids, files, rules):
        app.include_router(module.router)
    install_readiness(app, {"rucio": factory.backend.ping})
    return app
