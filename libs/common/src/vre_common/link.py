"""One service skeleton: a service's link to the gateway, and the app every service builds.

A service gets everything it shares with the gateway in one typed :class:`GatewayLink`,
handed to its ``create_app(settings, link=...)``:

- the token **validator** (the gateway's own one when it mounts the service);
- the project **policy** (who may do what in a Science Project), or None: project scopes and
  project runs are refused (503);
- the provenance **event sink**, or None: nothing is recorded;
- the **mounted services** board of an embedded gateway (None for a service on its own),
  where a mounted service lists its readiness checks (the gateway's ``/readyz`` runs them)
  and the datalake its scope admin (the gateway creates project scopes with it), and whose
  presence says that the gateway's app runs the shared middleware.

Two ways to get one, one code path:

- embedded: the gateway builds its ``Factory`` first (its database, the in-process project
  directory and event sink); its ``factory.link`` goes to every service it mounts;
- distributed: a service builds :meth:`GatewayLink.from_settings` from its own settings (the
  policy asks ``gateway_url`` with the caller's token, events are posted with the service's
  token), closed by the service's lifespan.

:func:`create_service_app` is the skeleton: the base app (problems, request ids, metrics),
the link kept for the dependencies (:func:`link_of`), and the lifespan that builds the
service's composition root (its ``Factory``), runs ``startup()``, keeps it in
``app.state.factory`` and calls ``aclose()`` at the end. :func:`serve_readiness` installs
``/readyz`` and lists the same checks on the gateway's board.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from fastapi import FastAPI

from vre_common.app import Lifespan, create_base_app, share_outer_middleware
from vre_common.auth import TokenValidator, build_validator
from vre_common.policy import HttpProjectDirectory, Policy
from vre_common.provenance.sink import EventSink, HttpEventSink, http_event_sink
from vre_common.readiness import Check, ReadinessChecks, install_readiness
from vre_common.settings import AuthSettings, ProvenanceSettings


class ScopeAdmin(Protocol):
    """What a mounted datalake offers the gateway in-process: project scopes."""

    async def create_project_scope(
        self, scope: str, *, project: str, quota_bytes: int | None
    ) -> object:
        """Create a project scope; ConflictError if it exists."""
        ...

    async def scope_has_data(self, scope: str) -> bool:
        """True if any DID is registered in ``scope``."""
        ...


class MountedServices:
    """The embedded gateway's board: what the services mounted in its process offer it.

    Each service lists itself while its ``create_app`` runs (before the gateway serves);
    the gateway reads the board when it answers ``/readyz`` and creates a project's scope.
    """

    def __init__(self) -> None:
        self._readiness: dict[str, ReadinessChecks] = {}
        self._scope_admin: ScopeAdmin | None = None

    def offer_readiness(self, service: str, checks: ReadinessChecks) -> None:
        """List ``service``'s readiness checks (its own database, the systems it uses)."""
        self._readiness[service] = checks

    def offer_scope_admin(self, admin: ScopeAdmin) -> None:
        """The datalake's in-process scope creation."""
        self._scope_admin = admin

    @property
    def readiness(self) -> Mapping[str, ReadinessChecks]:
        """Each mounted service's checks, by service name."""
        return MappingProxyType(self._readiness)

    @property
    def scope_admin(self) -> ScopeAdmin | None:
        """The mounted datalake's scope admin, if a datalake is mounted."""
        return self._scope_admin


class _ProjectsSettings(Protocol):
    @property
    def directory_ttl_seconds(self) -> float: ...


class LinkedSettings(Protocol):
    """The settings of a service linked to the gateway (:meth:`GatewayLink.from_settings`)."""

    @property
    def gateway_url(self) -> str | None: ...

    @property
    def auth(self) -> AuthSettings: ...

    @property
    def projects(self) -> _ProjectsSettings: ...

    @property
    def provenance(self) -> ProvenanceSettings: ...


class _Closeable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class GatewayLink:
    """What a service shares with the gateway (see the module docstring)."""

    validator: TokenValidator
    policy: Policy | None = None
    event_sink: EventSink | None = None
    mounted: MountedServices | None = None
    owned: tuple[_Closeable, ...] = field(default=(), repr=False)

    @classmethod
    def from_settings(
        cls, settings: LinkedSettings, *, validator: TokenValidator | None = None
    ) -> GatewayLink:
        """A service on its own (distributed mode), linked as its settings say (``validator``
        replaces the one of ``settings.auth``: a test's issuer)."""
        return cls.over_http(
            settings.gateway_url,
            auth=settings.auth,
            directory_ttl_seconds=settings.projects.directory_ttl_seconds,
            provenance=settings.provenance,
            validator=validator,
        )

    @classmethod
    def over_http(
        cls,
        gateway_url: str | None,
        *,
        auth: AuthSettings,
        directory_ttl_seconds: float = 5.0,
        provenance: ProvenanceSettings | None = None,
        validator: TokenValidator | None = None,
    ) -> GatewayLink:
        """A service on its own (distributed mode): its validator from ``auth`` (unless
        given); the policy and the event sink talk to ``gateway_url`` (None: no projects, no
        provenance)."""
        directory = (
            HttpProjectDirectory(gateway_url, ttl_seconds=directory_ttl_seconds)
            if gateway_url
            else None
        )
        sink = http_event_sink(gateway_url, provenance) if provenance is not None else None
        owned: list[_Closeable] = [directory] if directory is not None else []
        if isinstance(sink, HttpEventSink):
            owned.append(sink)
        return cls(
            validator=validator or build_validator(auth),
            policy=Policy(directory) if directory is not None else None,
            event_sink=sink,
            owned=tuple(owned),
        )

    @property
    def shares_middleware(self) -> bool:
        """True when the mounting gateway's app runs request ids, metrics, origin and HEAD."""
        return self.mounted is not None

    def offer_readiness(self, service: str, checks: ReadinessChecks) -> None:
        """List ``service``'s checks on the gateway's board (nothing on its own)."""
        if self.mounted is not None:
            self.mounted.offer_readiness(service, checks)

    def offer_scope_admin(self, admin: ScopeAdmin) -> None:
        """Offer the datalake's scope creation to the mounting gateway (nothing on its own)."""
        if self.mounted is not None:
            self.mounted.offer_scope_admin(admin)

    async def aclose(self) -> None:
        """Close what this link opened (the HTTP clients of :meth:`over_http`)."""
        for resource in self.owned:
            await resource.aclose()


class ServiceRoot(Protocol):
    """What the skeleton needs of a service's composition root (its ``Factory``)."""

    async def startup(self) -> None:
        """Migrate or verify the schema, settle what a previous process left, start relays."""

    async def aclose(self) -> None:
        """Stop the jobs and relays, close the pools."""


def root_lifespan(link: GatewayLink, build: Callable[[], ServiceRoot]) -> Lifespan:
    """Build the root (unless built already), ``startup()``, keep it in ``app.state.factory``;
    at the end (also when the start-up fails) ``aclose()`` it and the link."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            root = build()
            try:
                await root.startup()
                app.state.factory = root
                yield
            finally:
                await root.aclose()
        finally:
            await link.aclose()

    return lifespan


def create_service_app(
    *,
    service: str,
    title: str,
    description: str,
    link: GatewayLink,
    build: Callable[[], ServiceRoot] | None = None,
    factory: ServiceRoot | None = None,
    **kwargs: Any,
) -> FastAPI:
    """The app of one VRE service, linked to the gateway by ``link`` (module docstring).

    The service's composition root is ``build()`` when the app starts (nothing touches the
    disk or the network before, so the OpenAPI document builds anywhere), or ``factory``
    when it is built already (its constructor opens nothing); ``app.state.factory`` holds it.
    """
    if factory is not None and build is None:
        build = _given(factory)
    elif build is None or factory is not None:
        raise TypeError("create_service_app: give build or factory (one of them)")
    app = create_base_app(
        service=service,
        title=title,
        description=description,
        lifespan=root_lifespan(link, build),
        **kwargs,
    )
    if factory is not None:
        app.state.factory = factory
    return link_service(app, link)


def _given(root: ServiceRoot) -> Callable[[], ServiceRoot]:
    return lambda: root


def link_service(app: FastAPI, link: GatewayLink) -> FastAPI:
    """Link a service's app as :func:`create_service_app` does (for an app built otherwise,
    e.g. a test's stand-in service): the link kept for the dependencies, and the shared
    middleware left to the gateway that mounts it (when the link is a mounting gateway's)."""
    attach_link(app, link)
    if link.shares_middleware:
        share_outer_middleware(app)
    return app


def serve_readiness(
    app: FastAPI,
    service: str,
    checks: Mapping[str, Check],
    *,
    optional: frozenset[str] = frozenset(),
) -> None:
    """``/readyz`` from ``checks`` (``optional``: external systems, reported only), and the
    same checks on the mounting gateway's board."""
    listed = ReadinessChecks(checks=dict(checks), optional=optional)
    install_readiness(app, listed)
    link_of(app).offer_readiness(service, listed)


def link_of(app: FastAPI) -> GatewayLink:
    """The link the app was built with (:func:`create_service_app`, :func:`attach_link`)."""
    link = getattr(app.state, "link", None)
    if not isinstance(link, GatewayLink):
        raise RuntimeError(f"{app.title} has no GatewayLink (build it with create_service_app)")
    return link


def attach_link(app: FastAPI, link: GatewayLink) -> FastAPI:
    """Keep ``link`` for the app's dependencies (:func:`link_of`); the gateway's own app, or a
    test's app served on its own."""
    app.state.link = link
    return app
