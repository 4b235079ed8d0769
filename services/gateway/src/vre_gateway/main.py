"""The gateway app: token validation, routing to the services, one merged OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.routing import Mount

from vre_common.app import Lifespan, create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.errors import VreError, set_problem_base
from vre_common.link import attach_link, link_of
from vre_common.migrations import Migrations
from vre_common.readiness import Check, DependencyState, Readiness, run_checks
from vre_gateway.backends.scopes import ScopeProvisioner
from vre_gateway.backends.search import SearchSource
from vre_gateway.config import GatewaySettings
from vre_gateway.dev_issuer import DevIssuer, dev_issuer_router
from vre_gateway.factory import Factory
from vre_gateway.handlers import audit, me, members, problems, projects, provenance, search
from vre_gateway.limits import BodyLimitMiddleware, RateLimitMiddleware
from vre_gateway.openapi import merge_openapi
from vre_gateway.upstreams import Upstreams
from vre_gateway.web.routes import WebUi, install_web

DESCRIPTION = """\
One API for a Science Project's whole chain: **dataset → workflow run → result → DOI**.

Authenticate with an IAM access token: `Authorization: Bearer <token>`. Errors are
`application/problem+json` (RFC 9457) with a `request_id` to quote.
"""


def create_app(
    settings: GatewaySettings | None = None,
    *,
    factory: Factory | None = None,
    service_apps: Mapping[str, FastAPI] | None = None,
    validator: TokenValidator | None = None,
    dev_issuer: DevIssuer | None = None,
    provisioner: ScopeProvisioner | None = None,
    search_sources: Sequence[SearchSource] | None = None,
) -> FastAPI:
    """Build the gateway.

    Embedded mode: the caller builds the gateway's ``factory`` first, the services with its
    ``factory.link`` (in-process policy, event sink and validator: vre_common.link), and
    passes both; ``service_apps`` are mounted under ``/<service>`` (no network hop; their
    lifespans run inside the gateway's). Distributed mode: requests under ``/<service>`` are
    forwarded to ``settings.service_urls``. Without ``factory`` one is built from
    ``validator`` (else the settings', with ``dev_issuer``'s issuer), ``provisioner`` and
    ``search_sources``.

    The gateway's own database is migrated at start (upgrade in embedded mode) or checked
    (distributed: the app refuses to start on an out-of-date schema).
    """
    settings = settings or GatewaySettings()
    set_problem_base(settings.problem_base)  # one process-wide base, services included
    if factory is None:
        factory = Factory(
            settings,
            validator=validator or _validator(settings, dev_issuer),
            provisioner=provisioner,
            search_sources=search_sources,
        )
    apps = dict(service_apps or {})
    upstreams = Upstreams(settings)
    web = _web_ui(settings, factory, dev_issuer)
    app = create_base_app(
        service="gateway",
        title="VRE — Virtual Research Environment API",
        description=DESCRIPTION,
        lifespan=_lifespan(settings, factory, apps, upstreams, web),
        docs_url=None,
        redoc_url=None,
    )
    app.state.factory = factory
    attach_link(app, factory.link)
    _install_docs(app)
    for module in (me, projects, members, audit, provenance, search, problems):
        app.include_router(module.router)
    if dev_issuer is not None:
        app.include_router(
            dev_issuer_router(dev_issuer), prefix=settings.dev_issuer.path.rstrip("/")
        )
    if web is not None:
        install_web(app, web)
    _mount_services(app, factory, apps, upstreams)
    _install_readiness(app, settings, factory, upstreams)
    _install_openapi(app, apps, upstreams)
    install_limits(app, settings)
    return app


def _validator(settings: GatewaySettings, dev_issuer: DevIssuer | None) -> TokenValidator:
    """The settings' validator, also trusting the development issuer when there is one."""
    auth = settings.auth
    if dev_issuer is not None and dev_issuer.issuer not in auth.issuers:
        auth = auth.model_copy(update={"issuers": [*auth.issuers, dev_issuer.issuer]})
    return build_validator(auth)


def _lifespan(
    settings: GatewaySettings,
    factory: Factory,
    apps: Mapping[str, FastAPI],
    upstreams: Upstreams,
    web: WebUi | None,
) -> Lifespan:
    """The gateway's database ready, the mounted services started (their own lifespans), the
    remote documents fetched; at the end everything closed in reverse order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(factory.aclose)
            await _prepare_database(settings, factory)
            for sub in apps.values():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
            if web is not None:
                stack.push_async_callback(web.aclose)
            stack.push_async_callback(upstreams.aclose)

            def forget_merged_document() -> None:
                app.openapi_schema = None  # rebuilt with the new service's document

            upstreams.start(on_spec=forget_merged_document)
            yield

    return lifespan


async def _prepare_database(settings: GatewaySettings, factory: Factory) -> None:
    """Upgrade the schema, or refuse to start when it is not the newest
    (SchemaOutOfDateError)."""
    mode = settings.migrations
    if mode == "auto":
        ephemeral = settings.database.url.endswith(":memory:")  # nothing to verify: create it
        mode = "upgrade" if settings.mode == "embedded" or ephemeral else "verify"
    await Migrations("gateway").prepare(factory.database.engine, mode)


def _web_ui(
    settings: GatewaySettings, factory: Factory, dev_issuer: DevIssuer | None
) -> WebUi | None:
    """The landing page, guides, browser sign-in and the dashboard (unless turned off)."""
    if not settings.web.enabled:
        return None
    issuer = settings.web.issuer or (dev_issuer.issuer if dev_issuer else None)
    if issuer is None and settings.auth.issuers:
        issuer = settings.auth.issuers[0]
    return WebUi(
        settings,
        validator=factory.link.validator,
        database=factory.database,
        issuer=issuer,
        dev_issuer=dev_issuer is not None,
    )


def _mount_services(
    app: FastAPI, factory: Factory, apps: Mapping[str, FastAPI], upstreams: Upstreams
) -> None:
    """Each service under ``/<name>``: its app in-process (built with this gateway's link), or
    its proxy."""
    for name, sub in apps.items():
        if link_of(sub).mounted is not factory.mounted:
            raise ValueError(f"{name}: build the app with this gateway's factory.link")
        app.mount(f"/{name}", sub, name=name)
    for name, proxy in upstreams.proxies.items():
        app.mount(f"/{name}", proxy, name=name)
    # The services' prefixes first: most requests are theirs, and a mount matches on its prefix
    # alone, while the gateway's own routes (and the web pages) are tried one by one.
    mounted = {*apps, *upstreams.proxies}
    app.router.routes.sort(
        key=lambda route: not (isinstance(route, Mount) and route.name in mounted)
    )


def _install_readiness(
    app: FastAPI, settings: GatewaySettings, factory: Factory, upstreams: Upstreams
) -> None:
    """``/readyz``: the gateway's database, the mounted services' own checks (as they listed
    them on the factory's board), the remote services' answers."""
    validator = factory.link.validator

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
        checks: dict[str, Check] = {"gateway.database": _database_check(factory)}
        optional: set[str] = set()
        for name, listed in factory.mounted.readiness.items():
            checks.update({f"{name}.{dep}": check for dep, check in listed.checks.items()})
            optional.update(f"{name}.{dep}" for dep in listed.optional)
        states = (await run_checks(checks, optional=frozenset(optional))).dependencies
        states.extend(await upstreams.ready())
        states.insert(0, DependencyState(name="gateway", up=True))
        if settings.readiness_details == "signed-in" and not await _signed_in(request, validator):
            states = [s.model_copy(update={"reason": None}) for s in states]
        result = Readiness(ready=all(s.up or s.optional for s in states), dependencies=states)
        return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)


def _install_openapi(app: FastAPI, apps: Mapping[str, FastAPI], upstreams: Upstreams) -> None:
    """One document: the gateway's own merged with each service's (mounted, or fetched)."""
    own = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        docs = {name: sub.openapi() for name, sub in apps.items()}
        docs.update(upstreams.specs)
        app.openapi_schema = merge_openapi(own(), docs)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_limits(app: FastAPI, settings: GatewaySettings) -> None:
    """Body and query size limits, the rate limit, and CORS when origins are configured."""
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


def _database_check(factory: Factory) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with factory.database.engine.connect() as connection:
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
