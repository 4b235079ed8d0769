"""The catalogue service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from vre_catalogue.backends.base import ZenodoRecordsSource
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.factory import Factory
from vre_catalogue.handlers import harvest, software
from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.policy import HttpProjectDirectory, Policy
from vre_common.readiness import install_readiness

DESCRIPTION = """\
The software catalogue: codemeta.json entries validated against the ESCAPE OSSR rules, with
releases, persons (ORCID), licences (SPDX), container images and environments; full-text search
with facets; export to codemeta.json and Zenodo metadata; harvest of the OSSR Zenodo community.
Reads are public; writes need a token. An entry may belong to a Science Project
(`project=` at registration): then the project's maintainers edit it (`catalogue.write`).
"""


def create_app(
    settings: CatalogueSettings | None = None,
    *,
    validator: TokenValidator | None = None,
    records_source: ZenodoRecordsSource | None = None,
) -> FastAPI:
    """Build the catalogue app; the gateway passes its own validator when it mounts the app.

    Project-owned entries are authorized by ``app.state.policy``: the mounting gateway's
    in-process one, else (set at start) one asking the gateway at ``settings.gateway_url``.
    """
    settings = settings or CatalogueSettings()
    factory = Factory(settings, records_source=records_source)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await factory.startup()
            stack.push_async_callback(factory.aclose)
            if getattr(app.state, "policy", None) is None and settings.gateway_url:
                directory = HttpProjectDirectory(
                    settings.gateway_url, ttl_seconds=settings.directory_ttl_seconds
                )
                app.state.policy = Policy(directory)

                async def forget() -> None:
                    app.state.policy = None
                    await directory.aclose()

                stack.push_async_callback(forget)
            yield

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
