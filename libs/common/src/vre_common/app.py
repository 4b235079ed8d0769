"""The common shape of every VRE FastAPI app: problems, request ids, metrics, health."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from vre_common.logging import RequestIdMiddleware, ensure_logging
from vre_common.metrics import MetricsMiddleware, metrics_endpoint
from vre_common.metrics_listener import serve_metrics_separately
from vre_common.middleware import (
    HeadMiddleware,
    JsonOnlyMiddleware,
    RequestOriginMiddleware,
    route_table,
)
from vre_common.problems import (
    Problem,
    install_problem_handlers,
    problem_responses,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Health(BaseModel):
    """Liveness answer."""

    status: str = "ok"
    service: str


def _operation_id(route: APIRoute) -> str:
    return route.name


def _otel_wanted() -> bool:
    return os.environ.get("FASTAPI_OTEL", "").lower() == "true"


def create_base_app(
    *,
    service: str,
    title: str,
    description: str,
    version: str = "0.1.0",
    lifespan: Lifespan | None = None,
    metrics: bool = True,
    **kwargs: Any,
) -> FastAPI:
    """A FastAPI app with the VRE's cross-cutting behaviour installed.

    Route names become operationIds (the gateway prefixes them with the service name).
    """
    ensure_logging()
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # FastAPI's own OpenTelemetry bridge asks the OTel API whether a provider is set on
        # every request (~15 µs, twice per request in the embedded mode); the VRE exports
        # Prometheus metrics and JSON logs instead. FASTAPI_OTEL=true turns it back on.
        telemetry=None if _otel_wanted() else {"tracing": False, "metrics": False, "logs": False},
        **kwargs,
    )
    app.state.service_name = service
    install_problem_handlers(app)
    app.add_middleware(JsonOnlyMiddleware, router_app=app)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(RequestOriginMiddleware)
    app.add_middleware(MetricsMiddleware, service=service, router_app=app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", tags=["health"], summary="Liveness", response_model=Health)
    async def healthz() -> Health:
        return Health(service=service)

    if metrics and not serve_metrics_separately():  # METRICS_PORT: a port of its own
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema())
        json_only = _json_only_operations(app)
        # FastAPI documents 422 with its own HTTPValidationError; ours is a Problem.
        for path_name, path in schema.get("paths", {}).items():
            for method, op in path.items():
                if not isinstance(op, dict):
                    continue
                responses = op.setdefault("responses", {})
                # A body that does not parse (malformed JSON) is a 400 problem on any route.
                if "requestBody" in op and "400" not in responses:
                    responses["400"] = _problem_doc(400, "Malformed body (line, column, reason)")
                if (method.upper(), path_name) in json_only and "415" not in responses:
                    responses["415"] = _problem_doc(415, "The body is not JSON")
                resp = op.get("responses", {}).get("422")
                if resp is not None and "application/json" in resp.get("content", {}):
                    resp["content"] = {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    }
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _problem_doc(status: int, description: str) -> dict[str, Any]:
    doc = problem_responses(status)[status]
    return {**doc, "description": description}


def _json_only_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of the operations whose body is one JSON document."""
    out: set[tuple[str, str]] = set()
    for route in route_table(app):
        if route.in_schema and route.json_only:
            out.update((m, route.path_format) for m in route.methods)
    return out


async def _noop(_: FastAPI) -> AsyncIterator[None]:
    yield


# What an outer VRE app (the embedded gateway) already does for the apps it mounts in its own
# process: the request id, the metrics (counted under the mounted app's service name), the
# caller's origin and HEAD as GET. JsonOnlyMiddleware stays: it knows the mounted app's routes.
SHARED_MIDDLEWARE: frozenset[Any] = frozenset(
    {RequestIdMiddleware, MetricsMiddleware, RequestOriginMiddleware, HeadMiddleware}
)


def share_outer_middleware(app: FastAPI) -> FastAPI:
    """Make ``app`` rely on the middleware of the VRE app that mounts it in-process, so that a
    request runs it once instead of once per app; call before ``app`` serves a request.

    Only for apps that are mounted under another :func:`create_base_app` app: served on its
    own, ``app`` would have no request ids or metrics.
    """
    if app.middleware_stack is not None:
        raise RuntimeError(f"{app.title}: its middleware is built already (it has served)")
    app.user_middleware = [m for m in app.user_middleware if m.cls not in SHARED_MIDDLEWARE]
    app.state.outer_middleware = True
    return app
