"""The catalogue service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vre_catalogue.backends.base import ZenodoRecordsSource
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.factory import Factory
from vre_catalogue.handlers import harvest, software
from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.readiness import install_readiness

DESCRIPTION = """\
The software catalogue: codemeta.json entries validated against the ESCAPE OSSR rules, with
releases, persons (ORCID), licences (SPDX), container images and environments; full-text search
with facets; export to codemeta.json and Zenodo metadata; harvest of the OSSR Zenodo community.
Reads are public; writes need a token.
"""


def create_app(
    settings: CatalogueSettings | None = None,
    *,
    validator: TokenValidator | None = None,
    records_source: ZenodoRecordsSource | None = None,
) -> FastAPI:
    """Build the catalogue app; the gateway passes its own validator when it mounts the app."""
    settings = settings or CatalogueSettings()
    factory = Factory(settings, records_source=records_source)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await factory.startup()
        try:
            yield
        finally:
            await factory.aclose()

    app = create_base_app(
        service="catalogue",
        title="VRE catalogue",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.factory = factory
    app.state.validator = validator or build_validator(settings.auth)
    app.include_router(software.router)
    app.include_router(harvest.router)
    install_readiness(app, {"database": factory.check_database})
    return app
