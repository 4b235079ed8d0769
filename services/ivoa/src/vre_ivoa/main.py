"""The ivoa service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_common.auth import TokenValidator
from vre_common.link import GatewayLink, create_service_app, serve_readiness
from vre_common.readiness import Check, healthz_check
from vre_ivoa.config import IvoaSettings
from vre_ivoa.factory import Factory
from vre_ivoa.handlers import queries, services

DESCRIPTION = (
    "IVOA data access for the VRE: the VO services this deployment offers (TAP, cone search, "
    "SIA v2) with their capabilities and tables, discovery in an IVOA registry, and queries "
    "(ADQL, cone, SIA, TAP upload cross-matches) whose result tables are written into the "
    "Data Lake with metadata and provenance, ready as workflow inputs."
)


def create_app(
    settings: IvoaSettings | None = None,
    *,
    link: GatewayLink | None = None,
    validator: TokenValidator | None = None,
) -> FastAPI:
    """Build the ivoa app, linked to the gateway by ``link`` (the embedded gateway's), else by
    one over HTTP from the settings (vre_common.link; ``validator`` replaces the settings'
    one)."""
    settings = settings or IvoaSettings()
    link = link or GatewayLink.from_settings(settings, validator=validator)
    app = create_service_app(
        service="ivoa",
        title="VRE ivoa",
        description=DESCRIPTION,
        link=link,
        build=lambda: Factory.from_settings(settings, link),
    )
    for module in (services, queries):
        app.include_router(module.router)

    async def database() -> None:
        await app.state.factory.db.ping()

    checks: dict[str, Check] = {"database": database}
    if settings.datalake.url:
        checks["datalake"] = healthz_check("datalake", settings.datalake.url)
    # The datalake is another service: reported, not required (vre_common.readiness).
    serve_readiness(app, "ivoa", checks, optional=frozenset({"datalake"}))
    return app
