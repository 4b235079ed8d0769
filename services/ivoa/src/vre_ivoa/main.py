"""The ivoa service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.lifespan import factory_lifespan
from vre_common.readiness import Check, healthz_check, install_readiness
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
    settings: IvoaSettings | None = None, *, validator: TokenValidator | None = None
) -> FastAPI:
    """Build the ivoa app; the gateway passes its own validator when it mounts the app.

    Nothing touches the disk or the network until the lifespan starts (the OpenAPI document
    builds without configuration). The project policy and the provenance sink are chosen
    then: the ones a mounting gateway put in ``app.state`` (``policy``, ``provenance_sink``),
    else the gateway at ``settings.gateway_url`` over HTTP.
    """
    settings = settings or IvoaSettings()

    app = create_base_app(
        service="ivoa",
        title="VRE ivoa",
        description=DESCRIPTION,
        lifespan=factory_lifespan(settings, lambda: Factory.from_settings(settings)),
    )
    app.state.settings = settings
    app.state.validator = validator or build_validator(settings.auth)
    for module in (services, queries):
        app.include_router(module.router)

    async def database() -> None:
        await app.state.factory.db.ping()

    checks: dict[str, Check] = {"database": database}
    if settings.datalake.url:
        checks["datalake"] = healthz_check("datalake", settings.datalake.url)
    # The datalake is another service: reported, not required (vre_common.readiness).
    install_readiness(app, checks, optional=frozenset({"datalake"}))
    return app
