"""The parts services share: the project gate, the provenance sink choice, stored problems."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr

from vre_common.auth import Principal
from vre_common.clients.datalake import QuotaRefusedError
from vre_common.errors import NotFoundError
from vre_common.http import make_http_client
from vre_common.policy import (
    Action,
    Policy,
    ProjectAccess,
    ProjectForbiddenError,
    ProjectGate,
    ProjectsUnavailableError,
    Role,
    Visibility,
)
from vre_common.problems import internal_problem, stored_problem
from vre_common.provenance.sink import HttpEventSink, http_event_sink
from vre_common.settings import HttpClientSettings, ProvenanceSettings


def user() -> Principal:
    return Principal(
        subject="u", issuer="https://iam.test/", username="u", expires_at=int(time.time()) + 60
    )


class OneProject:
    """A directory knowing one project, ``proj.demo``, where the caller is a viewer."""

    async def access(
        self,
        principal: Principal | None,
        *,
        project: str | None = None,
        scope: str | None = None,
        token: str | None = None,
    ) -> ProjectAccess | None:
        if scope != "proj.demo":
            return None
        return ProjectAccess(
            project="demo", scope=scope, visibility=Visibility.PRIVATE, role=Role.VIEWER
        )


async def test_project_gate_checks_project_scopes_only() -> None:
    gate = ProjectGate("proj.", service="ivoa", policy=None)
    assert gate.slug_of("proj.demo") == "demo"
    assert gate.slug_of("proj.") is None
    assert gate.slug_of("user.u") is None
    assert gate.scope_of("demo") == "proj.demo"
    # Not a project scope: nothing to ask, even without a gateway.
    assert await gate.require(user(), "t", "user.u", Action.DATA_WRITE) is None
    with pytest.raises(ProjectsUnavailableError, match="this ivoa service has no gateway"):
        await gate.require(user(), "t", "proj.demo", Action.DATA_WRITE)

    gate = ProjectGate("proj.", service="ivoa", policy=Policy(OneProject()))
    access = await gate.require(user(), "t", "proj.demo", Action.DATA_READ)
    assert access is not None
    assert access.project == "demo"
    with pytest.raises(ProjectForbiddenError):
        await gate.require_all(user(), "t", ["user.u", "proj.demo"], Action.DATA_WRITE)


def test_http_event_sink_needs_a_gateway_and_a_token(tmp_path: Path) -> None:
    token = ProvenanceSettings(service_token=SecretStr("s"))
    assert http_event_sink(None, token) is None
    assert http_event_sink("http://gw", ProvenanceSettings()) is None
    assert isinstance(http_event_sink("http://gw", token), HttpEventSink)
    token_file = ProvenanceSettings(service_token_file=tmp_path / "token")
    assert isinstance(http_event_sink("http://gw", token_file), HttpEventSink)


def test_stored_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    # an app made earlier in the session may have set the process-wide base
    monkeypatch.setattr("vre_common.errors._configured_base", None)
    refused = QuotaRefusedError("over quota", extra={"limit": 10, "status": 999})
    with_extensions = stored_problem(refused)
    assert with_extensions["status"] == refused.status  # an extension never overrides
    assert with_extensions["limit"] == 10
    assert "limit" not in stored_problem(refused, extensions=False)
    bare = stored_problem(NotFoundError("no such thing"))
    assert bare == {  # outside a request and unconfigured: the relative page reference
        "type": "/problems/not-found",
        "title": bare["title"],
        "status": 404,
        "detail": "no such thing",
    }
    assert internal_problem("boom")["status"] == 500


async def test_pooled_connections_expire_before_the_servers_keep_alive() -> None:
    """The distributed load test's one error: the datalake reused a connection to the gateway
    that uvicorn closed at that moment (5 s idle) — a 503 'gateway is unreachable'."""
    server_keep_alive = uvicorn.Config(app=None).timeout_keep_alive
    async with make_http_client() as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert 0 < pool._keepalive_expiry < server_keep_alive
    async with make_http_client(HttpClientSettings(keepalive_expiry=0.5)) as client:
        assert client._transport._pool._keepalive_expiry == 0.5  # type: ignore[attr-defined]
