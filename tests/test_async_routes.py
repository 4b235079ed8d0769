"""No request waits for a worker thread to look something up.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool: a hand-off to a worker
thread and back on every request, which a busy machine makes expensive (the thread waits for
the GIL, the event loop for the thread). The lookups our dependencies do (the factory, a
service built for the request) need no thread, so every endpoint and dependency of every
service is a coroutine; blocking work goes to a thread where it happens, on purpose.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

APPS = ["vre_gateway", "vre_datalake", "vre_workflows", "vre_catalogue", "vre_zenodo", "vre_ivoa"]


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # a router included as a whole
            yield from _routes(route.original_router.routes)
        elif hasattr(route, "routes"):
            yield from _routes(route.routes)


def _threaded(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        yield from _threaded(sub)
        call = sub.call
        if call is None:
            continue
        function = call if inspect.isfunction(call) else type(call).__call__  # e.g. HTTPBearer
        if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
            yield f"{function.__module__}.{function.__qualname__}"


@pytest.mark.parametrize("package", APPS)
def test_no_endpoint_or_dependency_runs_in_the_thread_pool(package: str) -> None:
    app = importlib.import_module(f"{package}.main").create_app()
    routes = list(_routes(app.routes))
    assert len(routes) > 3, f"{package}: no routes found (FastAPI's router layout changed?)"
    threaded = {
        f"{route.path}: {name}"
        for route in routes
        for name in [
            *_threaded(route.dependant),
            *([] if inspect.iscoroutinefunction(route.endpoint) else [route.endpoint.__name__]),
        ]
    }
    assert not threaded, sorted(threaded)
