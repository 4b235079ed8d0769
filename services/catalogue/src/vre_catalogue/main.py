"""The catalogue service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_catalogue.backends.base import ZenodoRecordsSource
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.factory import Factory
from vre_catalogue.handlers import harvest, software
from vre_common.auth import TokenValidator
from vre_common.link import GatewayLink, create_service_app, serve_readiness

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
    link: GatewayLink | None = None,
    validator: TokenValidator | None = None,
    records_source: ZenodoRecordsSource | None = None,
) -> FastAPI:
    """Build the catalogue app, linked to the gateway by ``link`` (the embedded gateway's),
    else by one over HTTP from the settings (vre_common.link; ``validator`` replaces the
    settings' one): project-owned entries are authorized by its policy. ``records_source``
    replaces the Zenodo one (tests)."""
    settings = settings or CatalogueSettings()
    link = link or GatewayLink.over_http(
        settings.gateway_url,
        auth=settings.auth,
        directory_ttl_seconds=settings.directory_ttl_seconds,
        validator=validator,
    )
    app = create_service_app(
        service="catalogue",
        title="VRE catalogue",
        description=DESCRIPTION,
        link=link,
        build=lambda: Factory(settings, link, records_source=records_source),
    )
    app.include_router(software.router)
    app.include_router(harvest.router)

    async def database() -> None:
        await app.state.factory.check_database()

    serve_readiness(app, "catalogue", {"database": database})
    return app
