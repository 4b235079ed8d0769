"""The zenodo service's FastAPI app."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.errors import BackendUnavailableError
from vre_common.lifespan import factory_lifespan
from vre_common.readiness import Check, healthz_check, install_readiness
from vre_zenodo.config import ZenodoSettings
from vre_zenodo.factory import Factory
from vre_zenodo.handlers import credentials, depositions, imports, records, reproductions

DESCRIPTION = (
    "Zenodo for the VRE: register your Zenodo token, import a Zenodo record's files into the "
    "Data Lake, publish Data Lake files or a workflow run's outputs with a DOI (and new "
    "versions of it), and search Zenodo records."
)


def create_app(
    settings: ZenodoSettings | None = None, *, validator: TokenValidator | None = None
) -> FastAPI:
    """Build the zenodo app; the gateway passes its own validator when it mounts the app.

    Nothing touches the disk or the network until the lifespan starts (the OpenAPI document
    builds without configuration). The project policy and the provenance sink are chosen
    then: the ones a mounting gateway put in ``app.state`` (``policy``, ``provenance_sink``),
    else the gateway at ``settings.gateway_url`` over HTTP.
    """
    settings = settings or ZenodoSettings()

    app = create_base_app(
        service="zenodo",
        title="VRE zenodo",
        description=DESCRIPTION,
        lifespan=factory_lifespan(settings, lambda: Factory.from_settings(settings)),
    )
    app.state.settings = settings
    app.state.validator = validator or build_validator(settings.auth)
    for module in (credentials, imports, depositions, records, reproductions):
        app.include_router(module.router)

    async def database() -> None:
        await app.state.factory.db.ping()

    async def zenodo() -> None:
        url = f"{settings.zenodo.api}/records"
        try:
            async with httpx.AsyncClient(verify=settings.zenodo.verify, timeout=3.0) as client:
                response = await client.get(url, params={"size": 1, "page": 1})
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"Zenodo unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise BackendUnavailableError(f"Zenodo answered {response.status_code}")

    checks: dict[str, Check] = {"database": database, "zenodo": zenodo}
    if settings.datalake.url:
        checks["datalake"] = healthz_check("datalake", settings.datalake.url)
    # Zenodo and the datalake are external: reported, not required (vre_common.readiness).
    install_readiness(app, checks, optional=frozenset({"zenodo", "datalake"}))
    return app
