"""vre_common.link: one service skeleton, linked to the gateway by one GatewayLink."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from vre_common.link import GatewayLink, MountedServices, create_service_app, link_of
from vre_common.readiness import ReadinessChecks
from vre_common.settings import AuthSettings, ProvenanceSettings
from vre_common.testing import TestIssuer, app_client


class Root:
    """A composition root that records what the skeleton did with it."""

    def __init__(self, calls: list[str], *, fail: bool = False) -> None:
        self.calls = calls
        self.fail = fail

    async def startup(self) -> None:
        self.calls.append("startup")
        if self.fail:
            raise RuntimeError("schema out of date")

    async def aclose(self) -> None:
        self.calls.append("aclose")


class Closing:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def aclose(self) -> None:
        self.calls.append("link closed")


def _service(calls: list[str], *, fail: bool = False) -> FastAPI:
    link = GatewayLink(validator=TestIssuer().validator(), owned=(Closing(calls),))
    return create_service_app(
        service="demo",
        title="demo",
        description="demo",
        link=link,
        build=lambda: Root(calls, fail=fail),
    )


async def test_the_lifespan_builds_starts_and_closes_the_root_then_the_link() -> None:
    calls: list[str] = []
    app = _service(calls)
    assert link_of(app).owned
    async with app_client(app) as client:
        assert calls == ["startup"]
        assert isinstance(app.state.factory, Root)
        assert (await client.get("/healthz")).status_code == 200
    assert calls == ["startup", "aclose", "link closed"]


async def test_a_failed_start_still_closes_the_root_and_the_link() -> None:
    calls: list[str] = []
    app = _service(calls, fail=True)
    with pytest.raises(RuntimeError, match="schema out of date"):
        async with app_client(app):
            pass
    assert calls == ["startup", "aclose", "link closed"]


async def test_a_service_on_its_own_links_over_http_only_when_a_gateway_is_configured() -> None:
    alone = GatewayLink.over_http(None, auth=AuthSettings(), provenance=ProvenanceSettings())
    assert (alone.policy, alone.event_sink, alone.mounted, alone.owned) == (None, None, None, ())
    linked = GatewayLink.over_http(
        "http://gateway.invalid",
        auth=AuthSettings(),
        provenance=ProvenanceSettings(service_token="t"),
    )
    assert linked.policy is not None
    assert linked.event_sink is not None
    assert len(linked.owned) == 2  # the project directory's and the sink's HTTP clients
    assert not linked.shares_middleware
    await linked.aclose()


def test_a_mounted_service_lists_its_readiness_and_scope_admin_on_the_board() -> None:
    board = MountedServices()
    link = GatewayLink(validator=TestIssuer().validator(), mounted=board)
    assert link.shares_middleware

    async def check() -> None:
        return None

    checks = ReadinessChecks(checks={"database": check}, optional=frozenset())
    link.offer_readiness("demo", checks)
    assert board.readiness == {"demo": checks}
    assert board.scope_admin is None
    # a service on its own has no board: offering is a no-op
    GatewayLink(validator=TestIssuer().validator()).offer_readiness("demo", checks)
