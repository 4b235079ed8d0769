"""Each service's declared search route (vre_common.search) is one of its own routes, with the
query parameter it is declared to filter by."""

from __future__ import annotations

import importlib

import pytest

from vre_common.auth import StaticKeySource, TokenValidator
from vre_common.search import SEARCH_ROUTES, SearchRoute
from vre_common.settings import AuthSettings


@pytest.mark.parametrize("route", list(SEARCH_ROUTES.values()), ids=lambda r: r.service)
def test_the_declared_route_is_the_services(route: SearchRoute) -> None:
    main = importlib.import_module(f"vre_{route.service}.main")
    app = main.create_app(validator=TokenValidator(AuthSettings(), StaticKeySource({})))
    operation = app.openapi()["paths"][route.path]["get"]
    parameters = {p["name"] for p in operation.get("parameters", [])}
    if route.query_param is not None:
        assert route.query_param in parameters
    if route.per_project_scope:
        assert "scope" in parameters
    else:
        assert route.hit is not None  # how one item of its answer becomes a hit
