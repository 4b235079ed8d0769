"""A service's link to the gateway at start-up: project policy, provenance sink, lifespan.

A service mounted by the gateway finds the gateway's own ``policy`` and ``provenance_sink``
in ``app.state``; a service on its own asks the gateway at ``settings.gateway_url`` over HTTP
(project access with the caller's token, events with the service token). Without either,
project scopes are refused (503) and no provenance is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI

from vre_common.app import Lifespan
from vre_common.policy import HttpProjectDirectory, Policy, ProjectGate
from vre_common.provenance.recorder import ServiceEvents
from vre_common.provenance.sink import EventSink, http_event_sink
from vre_common.settings import ProjectSettings, ProvenanceSettings


class GatewayLinkSettings(Protocol):
    """The settings every service linked to the gateway has."""

    @property
    def gateway_url(self) -> str | None: ...

    @property
    def projects(self) -> ProjectSettings: ...

    @property
    def provenance(self) -> ProvenanceSettings: ...


class ServiceFactory(Protocol):
    """What :func:`factory_lifespan` needs of a service's factory."""

    @property
    def projects(self) -> ProjectGate: ...

    @property
    def events(self) -> ServiceEvents: ...

    async def startup(self) -> None:
        """Migrate or verify the schema, settle what a previous process left."""

    async def aclose(self) -> None:
        """Stop the jobs, close the pools."""


def gateway_policy(
    app: FastAPI, settings: GatewayLinkSettings
) -> tuple[Policy | None, HttpProjectDirectory | None]:
    """The mounting gateway's policy, else one asking the gateway over HTTP, else None.

    The second value is the HTTP directory created here (for the caller to close), if any.
    """
    policy: Policy | None = getattr(app.state, "policy", None)
    if policy is not None or not settings.gateway_url:
        return policy, None
    directory = HttpProjectDirectory(
        settings.gateway_url, ttl_seconds=settings.projects.directory_ttl_seconds
    )
    return Policy(directory), directory


def gateway_event_sink(app: FastAPI, settings: GatewayLinkSettings) -> EventSink | None:
    """The mounting gateway's provenance sink, else the gateway over HTTP, else None."""
    sink: EventSink | None = getattr(app.state, "provenance_sink", None)
    return sink or http_event_sink(settings.gateway_url, settings.provenance)


def factory_lifespan(
    settings: GatewayLinkSettings, build: Callable[[], ServiceFactory]
) -> Lifespan:
    """The lifespan of a service built by one factory: ``build()`` then ``startup()``, kept
    in ``app.state.factory``, linked to the gateway; ``aclose()`` at the end (also when the
    start-up fails)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        factory = build()
        try:
            await factory.startup()
        except BaseException:
            await factory.aclose()
            raise
        app.state.factory = factory
        directory: HttpProjectDirectory | None = None
        try:
            policy, directory = gateway_policy(app, settings)
            factory.projects.use(policy)
            factory.events.start(gateway_event_sink(app, settings))
            yield
        finally:
            await factory.aclose()
            if directory is not None:
                await directory.aclose()

    return lifespan
