"""The gateway app: token validation, routing to the services, one merged OpenAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.routing import Mount

from vre_common.app import create_base_app, share_outer_middleware
from vre_common.auth import TokenValidator, build_validator
from vre_common.errors import VreError, set_problem_base
from vre_common.migrations import Migrations
from vre_common.policy import Policy
from vre_common.readiness import (
    DependencyState,
    Readiness,
    export_dependency_states,
    run_checks,
)
from vre_gateway.backends.scopes import InProcessScopeProvisioner, ScopeProvisioner
from vre_gateway.backends.search import SearchSource
from vre_gateway.config import GatewaySettings
from vre_gateway.dev_issuer import DevIssuer, dev_issuer_router
from vre_gateway.factory import GatewayResources
from vre_gateway.handlers import audit, me, members, problems, projects, provenance, search
from vre_gateway.limits import BodyLimitMiddleware, RateLimitMiddleware
from vre_gateway.openapi import merge_openapi
from vre_gateway.proxy import ServiceProxy
from vre_gateway.web.routes import WebUi, install_web

DESCRIPTION = """\
One API for a Science Project's whole chain: **dataset → workflow run → result → DOI**.

Authenticate with an IAM access token: `Authorization: Bearer <token>`. Errors are
`application/problem+json` (RFC 9457) with a `request_id` to quote.
"""


def create_app(  # noqa: PLR0915 - the gateway's wiring, read top to bottom
    settings: GatewaySettings | None = None,
    *,
    service_apps: dict[str, FastAPI] | None = None,
    validator: TokenValidator | None = None,
    dev_issuer: DevIssuer | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    provisioner: ScopeProvisioner | None = None,
    search_sources: Sequence[SearchSource] | None = None,
) -> FastAPI:
    """Build the gateway.

    Embedded mode: ``service_apps`` are mounted in-process under ``/<service>`` (no network
    hop; their lifespans run inside the gateway's). Distributed mode: requests under
    ``/<service>`` are forwarded to ``settings.service_urls``.

    The gateway's own database is migrated at start (``migrations``: upgrade in embedded
    mode) or checked (distributed: the app refuses to start on an out-of-date schema).
    Mounted services get ``state.policy`` (an in-process project directory) and
    ``state.provenance_sink`` (events straight into the gateway's database). A mounted datalake
    that offers ``state.scope_admin`` creates project scopes in-process (unless ``provisioner``
    is given).
    """
    settings = settings or GatewaySettings()
    set_problem_base(settings.problem_base)  # one process-wide base, services included
    if validator is None:
        auth = settings.auth
        if dev_issuer is not None and dev_issuer.issuer not in auth.issuers:
            auth = auth.model_copy(update={"issuers": [*auth.issuers, dev_issuer.issuer]})
        validator = build_validator(auth)
    apps = service_apps or {}
    proxies = {
        name: ServiceProxy(
            name,
            url,
            buffer_bytes=settings.proxy_buffer_bytes,
            connect_timeout=settings.proxy_connect_timeout,
            read_timeout=settings.proxy_read_timeout,
        )
        for name, url in settings.service_urls.items()
        if settings.mode == "distributed"
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(_gateway_database(settings, resources))
            for sub in apps.values():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
            loader = asyncio.create_task(_load_remote_specs()) if proxies else None
            try:
                yield
            finally:
                if loader is not None:
                    loader.cancel()
                for proxy in proxies.values():
                    await proxy.aclose()
                if web is not None:
                    await web.aclose()
                if on_shutdown is not None:
                    await on_shutdown()

    app = create_base_app(
        service="gateway",
        title="VRE — Virtual Research Environment API",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _install_docs(app)
    app.state.settings = settings
    app.state.validator = validator
    resources = _install_gateway_resources(
        app,
        GatewayResources(
            settings,
            provisioner=provisioner if provisioner is not None else _in_process_provisioner(apps),
            search_sources=search_sources,
        ),
        apps,
    )
    if dev_issuer is not None:
        app.include_router(
            dev_issuer_router(dev_issuer), prefix=settings.dev_issuer.path.rstrip("/")
        )
    web = _install_web(app, settings, validator, resources, dev_issuer)
    for name, sub in apps.items():
        sub.state.validator = validator
        app.mount(f"/{name}", share_outer_middleware(sub), name=name)
    for name, proxy in proxies.items():
        app.mount(f"/{name}", proxy, name=name)
    # The services' prefixes first: most requests are theirs, and a mount matches on its prefix
    # alone, while the gateway's own routes (and the web pages) are tried one by one.
    mounted = {*apps, *proxies}
    app.router.routes.sort(
        key=lambda route: not (isinstance(route, Mount) and route.name in mounted)
    )

    http = httpx.AsyncClient(timeout=httpx.Timeout(3.0))

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness of the VRE",
        description="200 when the gateway can serve (its database answers; in the embedded "
        "mode also each mounted service's own database). Each service and each backend is "
        "listed, up or down with the reason (reasons only for signed-in callers where "
        "`readiness_details` says so); an external system being down does not make this 503.",
        response_model=Readiness,
        responses={503: {"description": "The gateway cannot serve", "model": Readiness}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, Any] = {"gateway.database": _database_check(resources)}
        optional: set[str] = set()
        for name, sub in apps.items():
            for dep, check in getattr(sub.state, "ready_checks", {}).items():
                checks[f"{name}.{dep}"] = check
            optional.update(f"{name}.{dep}" for dep in getattr(sub.state, "ready_optional", ()))
        states = (await run_checks(checks, optional=frozenset(optional))).dependencies
        for name, proxy in proxies.items():
            remote = await _remote_ready(http, name, proxy.base_url)
            export_dependency_states(remote)
            states.extend(remote)
        states.insert(0, DependencyState(name="gateway", up=True))
        if settings.readiness_details == "signed-in" and not await _signed_in(request, validator):
            states = [s.model_copy(update={"reason": None}) for s in states]
        result = Readiness(ready=all(s.up or s.optional for s in states), dependencies=states)
        return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)

    base_openapi = app.openapi
    remote_specs: dict[str, dict[str, Any]] = {}

    async def _load_remote_specs() -> None:
        """Distributed mode: fetch each service's document until all are in (services may
        start after the gateway); the merged document is rebuilt when one arrives."""
        delay = 0.5
        while len(remote_specs) < len(proxies):
            for name, proxy in proxies.items():
                if name in remote_specs:
                    continue
                try:
                    response = await http.get(proxy.base_url + "/openapi.json")
                    if response.status_code == 200:
                        remote_specs[name] = response.json()
                        app.openapi_schema = None
                except (httpx.HTTPError, ValueError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        docs = {name: sub.openapi() for name, sub in apps.items()}
        docs.update(remote_specs)
        app.openapi_schema = merge_openapi(base_openapi(), docs)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        exempt=settings.streaming_routes,
        max_query=settings.max_query_bytes,
    )
    app.add_middleware(RateLimitMiddleware, settings=settings.rate_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Request-ID",
                "Content-MD5",
                "Digest",
                "Range",
            ],
            expose_headers=["X-Request-ID", "ETag", "Content-Range", "Retry-After"],
        )
    return app


def _install_web(
    app: FastAPI,
    settings: GatewaySettings,
    validator: TokenValidator,
    resources: GatewayResources,
    dev_issuer: DevIssuer | None,
) -> WebUi | None:
    """The landing page, guides, browser sign-in and the dashboard (unless turned off)."""
    if not settings.web.enabled:
        return None
    issuer = settings.web.issuer or (dev_issuer.issuer if dev_issuer else None)
    if issuer is None and settings.auth.issuers:
        issuer = settings.auth.issuers[0]
    ui = WebUi(
        settings,
        validator=validator,
        database=resources.database,
        issuer=issuer,
        dev_issuer=dev_issuer is not None,
    )
    install_web(app, ui)
    return ui


def _in_process_provisioner(apps: dict[str, FastAPI]) -> ScopeProvisioner | None:
    """The mounted datalake's in-process scope creation, if it offers one."""
    datalake = apps.get("datalake")
    admin = getattr(datalake.state, "scope_admin", None) if datalake is not None else None
    return InProcessScopeProvisioner(admin) if admin is not None else None


def _install_gateway_resources(
    app: FastAPI, resources: GatewayResources, apps: dict[str, FastAPI]
) -> GatewayResources:
    """The gateway's own routes, and what mounted services use to reach its database."""
    app.state.gateway = resources
    for module in (me, projects, members, audit, provenance, search, problems):
        app.include_router(module.router)
    for sub in apps.values():
        sub.state.policy = Policy(resources.directory)
        sub.state.provenance_sink = resources.event_sink
    return resources


@asynccontextmanager
async def _gateway_database(
    settings: GatewaySettings, resources: GatewayResources
) -> AsyncIterator[None]:
    """Upgrade the schema, or refuse to start when it is not the newest (SchemaOutOfDateError);
    close the database and HTTP pools at the end."""
    mode = settings.migrations
    if mode == "auto":
        ephemeral = settings.database.url.endswith(":memory:")  # nothing to verify: create it
        mode = "upgrade" if settings.mode == "embedded" or ephemeral else "verify"
    await Migrations("gateway").prepare(resources.database.engine, mode)
    try:
        yield
    finally:
        await resources.aclose()


def _database_check(resources: GatewayResources) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with resources.database.engine.connect() as connection:
            await connection.execute(text("select 1"))

    return check


def _install_docs(app: FastAPI) -> None:
    """Swagger UI from assets shipped in a package: /docs works with no CDN, offline."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static/docs", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="VRE API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )


async def _signed_in(request: Request, validator: TokenValidator) -> bool:
    """Whether the request carries a valid bearer token (it may see readiness reasons)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        await validator.validate(token.strip())
    except VreError:
        return False
    return True


async def _remote_ready(http: httpx.AsyncClient, name: str, base_url: str) -> list[DependencyState]:
    try:
        response = await http.get(base_url + "/readyz")
        data = response.json()
        deps = [DependencyState(**d) for d in data.get("dependencies", [])]
        return [
            DependencyState(name=name, up=response.status_code == 200, optional=True),
            *(d.model_copy(update={"name": f"{name}.{d.name}", "optional": True}) for d in deps),
        ]
    except (httpx.HTTPError, ValueError, TypeError) as exc:
        reason = f"unreachable: {type(exc).__name__}"
        return [DependencyState(name=name, up=False, reason=reason, optional=True)]
