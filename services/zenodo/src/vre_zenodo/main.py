"""The zenodo service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.errors import BackendUnavailableError
from vre_common.policy import HttpProjectDirectory, Policy
from vre_common.readiness import Check, install_readiness
from vre_zenodo.config import ZenodoSettings
from vre_zenodo.factory import Factory
from vre_zenodo.handlers import credentials, depositions, imports, records

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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        factory = Factory.from_settings(settings)
        try:
            await factory.startup()
        except BaseException:
            await factory.aclose()
            raise
        app.state.factory = factory
        directory: HttpProjectDirectory | None = None
        try:
            directory = _use_gateway(app, settings, factory)
            yield
        finally:
            await factory.aclose()
            if directory is not None:
                await directory.aclose()

    app = create_base_app(
        service="zenodo",
        title="VRE zenodo",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.validator = validator or build_validator(settings.auth)
    for module in (credentials, imports, depositions, records):
        app.include_router(module.router)

    async def database() -> None:
        await app.state.factory.check_database()

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
        datalake_url = settings.datalake.url

        async def datalake() -> None:
            try:
                async with httpx.AsyncClient(timeout=3.0) as client:
                    response = await client.get(f"{datalake_url}/healthz")
            except httpx.HTTPError as exc:
                raise BackendUnavailableError(
                    f"datalake service unreachable: {type(exc).__name__}"
                ) from exc
            if response.status_code != 200:
                raise BackendUnavailableError(f"datalake answered {response.status_code}")

        checks["datalake"] = datalake
    # Zenodo is external and only needed to import or publish: reported, not required.
    install_readiness(app, checks, optional=frozenset({"zenodo"}))
    return app


def _use_gateway(
    app: FastAPI, settings: ZenodoSettings, factory: Factory
) -> HttpProjectDirectory | None:
    """Project policy and provenance sink: the mounting gateway's, or the gateway over HTTP.

    Returns the HTTP directory it created (to close at the end), if any.
    """
    directory: HttpProjectDirectory | None = None
    policy: Policy | None = getattr(app.state, "policy", None)
    if policy is None and settings.gateway_url:
        directory = HttpProjectDirectory(
            settings.gateway_url, ttl_seconds=settings.projects.directory_ttl_seconds
        )
        policy = Policy(directory)
    factory.projects.use(policy)
    factory.events.start(getattr(app.state, "provenance_sink", None) or factory.http_event_sink())
    return directory
