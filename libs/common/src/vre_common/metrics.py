"""Prometheus metrics shared by every VRE service (one registry per process)."""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vre_common.metrics_files import MULTIPROCESS_DIR

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "vre_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "vre_http_request_duration_seconds",
    "Time to the end of the response",
    ["service", "method", "route"],
    buckets=_BUCKETS,
)
BACKEND_SECONDS = Histogram(
    "vre_backend_request_duration_seconds",
    "Calls to external systems (Rucio, REANA, Zenodo, IAM, services)",
    ["backend", "operation", "outcome"],
    buckets=_BUCKETS,
)
TOKEN_VALIDATIONS = Counter(
    "vre_token_validations_total", "Bearer token validations", ["outcome", "reason"]
)
TRANSFER_BYTES = Counter(
    "vre_transfer_bytes_total", "Bytes streamed through uploads and downloads", ["direction"]
)
RUNS = Counter("vre_workflow_runs_total", "Workflow runs reaching a state", ["backend", "status"])


class MetricsMiddleware:
    """Count requests and time them by route template (never the raw path: bounded labels).

    The route is read from the scope after the app handled the request (Starlette records
    the matched route there), so no extra matching is done. A request that a mounted app
    handled is counted once: here, under the mounted app's service name, when that app
    shares this middleware (:func:`vre_common.app.share_outer_middleware`, the embedded
    gateway's services), else by that app's own middleware; one forwarded by a proxy mount
    is labelled with the mount's path.
    """

    def __init__(self, app: ASGIApp, *, service: str, router_app: ASGIApp | None = None) -> None:
        self.app = app
        self.service = service
        self.router_app = router_app
        # Label children by (service, method, route, status): labels() takes a lock and
        # checks its arguments on every call; the set of keys is bounded by the routes.
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            handler_app = scope.get("app")
            service: str | None = self.service
            if not (
                self.router_app is None or handler_app is None or handler_app is self.router_app
            ):
                state = getattr(handler_app, "state", None)
                shares = getattr(state, "outer_middleware", False)
                service = getattr(state, "service_name", None) if shares else None
            route = scope.get("route")
            if getattr(getattr(route, "app", None), "counted_upstream", False):
                service = None  # forwarded to a process that counts it in the same metrics
            if service is not None:
                template = str(getattr(route, "path", "<unmatched>")) if route else "<unmatched>"
                key = (service, scope["method"], template, str(status))
                children = self._children.get(key)
                if children is None:
                    children = self._children[key] = (
                        REQUESTS.labels(*key),
                        REQUEST_SECONDS.labels(*key[:3]),
                    )
                children[0].inc()
                children[1].observe(time.perf_counter() - start)


async def metrics_endpoint(_: Request) -> Response:
    """Expose the metrics in the Prometheus text format: this process's, or, when the
    embedded VRE runs on several processes (``PROMETHEUS_MULTIPROC_DIR``), all of theirs."""
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)


def registry() -> CollectorRegistry:
    """What ``/metrics`` shows: this process's registry, or every process's metrics when they
    share them (``PROMETHEUS_MULTIPROC_DIR``)."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    # Counters and histograms summed over the processes, gauges by their multiprocess_mode;
    # collectors that read live objects (connection pools) are this process's.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in _live_collectors():
        registry.register(collector)
    return registry


def _live_collectors() -> list[Collector]:
    from vre_common.pool_metrics import POOLS

    return [POOLS]


def process_exited(pid: int) -> None:
    """Drop the live gauges of a process that stopped (multiprocess mode)."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
