"""The ivoa service's FastAPI app."""

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
        service="ivoa", title="VRE ivoa", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.validator = validator or build_validator(settings.auth)
    for module in (services, queries):
        app.include_router(module.router)

    async def database() -> None:
        await app.state.factory.check_database()

    checks: dict[str, Check] = {"database": database}
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
    install_readiness(app, checks)
    return app


def _use_gateway(
    app: FastAPI, settings: IvoaSettings, factory: Factory
) -> HttpProjectDirectory | None:
    """Project policy and provenance sink: the mounting gateway's, or the gateway over HTTP."""
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
