"""The zenodo service's FastAPI app."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from vre_common.auth import TokenValidator
from vre_common.errors import BackendUnavailableError
from vre_common.link import GatewayLink, create_service_app, serve_readiness
from vre_common.readiness import Check, healthz_check
from vre_zenodo.config import ZenodoSettings
from vre_zenodo.factory import Factory
from vre_zenodo.handlers import credentials, depositions, imports, records, reproductions

DESCRIPTION = (
    "Zenodo for the VRE: register your Zenodo token, import a Zenodo record's files into the "
    "Data Lake, publish Data Lake files or a workflow run's outputs with a DOI (and new "
    "versions of it), and search Zenodo records."
)


def create_app(
    settings: ZenodoSettings | None = None,
    *,
    link: GatewayLink | None = None,
    validator: TokenValidator | None = None,
) -> FastAPI:
    """Build the zenodo app, linked to the gateway by ``link`` (the embedded gateway's), else
    by one over HTTP from the settings (vre_common.link; ``validator`` replaces the settings'
    one)."""
    settings = settings or ZenodoSettings()
    link = link or GatewayLink.from_settings(settings, validator=validator)
    app = create_service_app(
        service="zenodo",
        title="VRE zenodo",
        description=DESCRIPTION,
        link=link,
        build=lambda: Factory.from_settings(settings, link),
    )
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
    serve_readiness(app, "zenodo", checks, optional=frozenset({"zenodo", "datalake"}))
    return app
