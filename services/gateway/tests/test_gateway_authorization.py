"""Authorization everywhere: the table of docs/authorization.md, enforced end to end.

- the gateway's own routes, each role × action × own / other / public project, anonymous too;
- the policy a *service* uses, through the HTTP project directory against a running gateway
  (every action of the table), and through the in-process directory a mounted service gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.gateway.tests.conftest import gateway_settings
from services.gateway.tests.gateway_support import RecordingProvisioner, documented_permissions
from vre_common.app import create_base_app
from vre_common.auth import Principal
from vre_common.deps import CurrentUser, OptionalUser, PolicyDep
from vre_common.errors import ConflictError, ForbiddenError, InvalidTokenError, NotFoundError
from vre_common.link import link_of, link_service
from vre_common.policy import (
    Action,
    HttpProjectDirectory,
    Policy,
    ProjectAccess,
)
from vre_common.testing import ServerThread, TestIssuer, app_client
from vre_gateway.factory import Factory
from vre_gateway.main import create_app

TABLE = documented_permissions()
ROLES = ["owner", "maintainer", "member", "viewer"]
# role → the user who has it in the "own" project (zed owns every project)
HOLDER = {"owner": "zed", "maintainer": "mia", "member": "mel", "viewer": "vic"}


def _expected(action: str, column: str, *, anonymous: bool = False) -> int:
    if TABLE[action][column] == "✔":
        return 200
    return 401 if anonymous else 403


# ----------------------------------------------------------------------------- a live gateway


@dataclass
class Live:
    url: str
    issuer: TestIssuer
    tokens: dict[str, str]

    def headers(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}


def _setup(client: httpx.Client, live: Live) -> None:
    zed = live.headers("zed")
    for slug, visibility in (("own", "private"), ("other", "private"), ("pub", "public")):
        r = client.post(
            "/projects", json={"name": slug, "slug": slug, "visibility": visibility}, headers=zed
        )
        assert r.status_code == 201, r.text
    for role, user in HOLDER.items():
        if role != "owner":
            r = client.post(
                "/projects/own/members",
                json={"subject": live.issuer.subject(user), "role": role},
                headers=zed,
            )
            assert r.status_code == 201, r.text
    r = client.post(
        "/projects/own/groups", json={"group": "/vre/beta", "role": "member"}, headers=zed
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    issuer = TestIssuer()
    db = tmp_path_factory.mktemp("authz") / "gateway.db"
    settings = gateway_settings(
        f"sqlite+aiosqlite:///{db}", issuer, projects={"max_projects_per_user": 1000}
    )
    app = create_app(settings, validator=issuer.validator(), provisioner=RecordingProvisioner())
    users = [*HOLDER.values(), "bob", "carol"]
    tokens = {u: issuer.token(u) for u in users}
    with ServerThread(app) as server:
        result = Live(server.url, issuer, tokens)
        with httpx.Client(base_url=server.url) as client:
            _setup(client, result)
        yield result


async def _principal(live: Live, user: str | None) -> Principal | None:
    return await live.issuer.validator().validate(live.tokens[user]) if user else None


def _status(exc: BaseException | None) -> int:
    if exc is None:
        return 200
    for cls, status in (
        (NotFoundError, 404),
        (InvalidTokenError, 401),
        (ForbiddenError, 403),
        (ConflictError, 409),
    ):
        if isinstance(exc, cls):
            return status
    raise exc


@pytest.fixture(scope="module")
async def policy(live: Live) -> AsyncIterator[Policy]:
    directory = HttpProjectDirectory(live.url, ttl_seconds=60)
    yield Policy(directory)
    await directory.aclose()


async def _require(policy: Policy, live: Live, user: str | None, action: str, **target: str) -> int:
    principal = await _principal(live, user)
    try:
        await policy.require(principal, Action(action), token=live.tokens.get(user or ""), **target)
    except (NotFoundError, InvalidTokenError, ForbiddenError, ConflictError) as exc:
        return _status(exc)
    return 200


@pytest.mark.parametrize("action", sorted(TABLE))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["own", "other", "public"])
async def test_service_policy_through_the_gateway(
    live: Live, policy: Policy, action: str, role: str, kind: str
) -> None:
    """What a service decides when it asks the gateway (by scope, as the datalake does)."""
    user = HOLDER[role]
    if kind == "own":
        assert await _require(policy, live, user, action, scope="proj.own") == _expected(
            action, role
        )
    elif kind == "other":
        caller = user if user != "zed" else "carol"  # zed owns every project
        assert await _require(policy, live, caller, action, scope="proj.other") == 404
    else:
        caller = user if user != "zed" else "carol"
        assert await _require(policy, live, caller, action, project="pub") == _expected(
            action, "signed-in"
        )


@pytest.mark.parametrize("action", sorted(TABLE))
async def test_service_policy_for_anonymous_and_group_members(
    live: Live, policy: Policy, action: str
) -> None:
    assert await _require(policy, live, None, action, scope="proj.own") == 404
    assert await _require(policy, live, None, action, scope="proj.other") == 404
    assert await _require(policy, live, None, action, scope="proj.nothing") == 404
    assert await _require(policy, live, None, action, project="pub") == _expected(
        action, "anonymous", anonymous=True
    )
    # bob is a member of "own" through the /vre/beta binding only
    assert await _require(policy, live, "bob", action, scope="proj.own") == _expected(
        action, "member"
    )


async def test_directory_caches_per_caller_and_target(live: Live) -> None:
    directory = HttpProjectDirectory(live.url, ttl_seconds=0.3)
    mia = await _principal(live, "mia")
    try:
        for _ in range(5):
            got = await directory.access(mia, scope="proj.own", token=live.tokens["mia"])
            assert isinstance(got, ProjectAccess)
            assert got.role == "maintainer"
        assert directory.lookups == 1
        await directory.access(mia, project="own", token=live.tokens["mia"])
        assert directory.lookups == 2  # another target
        await asyncio.sleep(0.35)
        await directory.access(mia, scope="proj.own", token=live.tokens["mia"])
        assert directory.lookups == 3  # expired
        assert await directory.access(None, scope="proj.other") is None
        with pytest.raises(ValueError, match="token"):
            await directory.access(mia, scope="proj.own")
    finally:
        await directory.aclose()


async def test_a_client_supplied_role_is_ignored(live: Live) -> None:
    """Only the caller's token counts: a header or parameter naming a role changes nothing."""
    async with httpx.AsyncClient(base_url=live.url) as client:
        r = await client.get(
            "/projects/-/access",
            params={"scope": "proj.own", "role": "owner"},
            headers={**live.headers("vic"), "X-Project-Role": "owner"},
        )
    assert r.json()["role"] == "viewer"


# ----------------------------------------------------------------------------- gateway routes

GATEWAY_ACTIONS = [
    "project.read",
    "project.update",
    "project.visibility",
    "project.delete",
    "members.read",
    "members.manage",
    "invitations.read",
    "ownership.transfer",
    "audit.read",
]


async def _fresh_project(client: httpx.AsyncClient, live: Live, slug: str, visibility: str) -> str:
    zed = live.headers("zed")
    r = await client.post(
        "/projects", json={"name": slug, "slug": slug, "visibility": visibility}, headers=zed
    )
    assert r.status_code == 201, r.text
    target = await client.post(
        f"/projects/{slug}/members",
        json={"subject": live.issuer.subject("carol"), "role": "viewer"},
        headers=zed,
    )
    member_id: str = target.json()["id"]
    return member_id


async def _call(
    client: httpx.AsyncClient, action: str, slug: str, headers: dict[str, str], member_id: str
) -> int:
    url = f"/projects/{slug}"
    requests: dict[str, tuple[str, str, Any]] = {
        "project.read": ("GET", url, None),
        "project.update": ("PATCH", url, {"description": "changed"}),
        "project.visibility": ("PATCH", url, {"visibility": "public"}),
        "project.delete": ("DELETE", url, None),
        "members.read": ("GET", url + "/members", None),
        "members.manage": ("POST", url + "/groups", {"group": "/x", "role": "viewer"}),
        "invitations.read": ("GET", url + "/invitations", None),
        "ownership.transfer": ("POST", url + "/transfer", {"member_id": member_id}),
        "audit.read": ("GET", url + "/audit", None),
    }
    method, path, body = requests[action]
    r = await client.request(method, path, json=body, headers=headers)
    return 200 if r.status_code in (200, 201, 204) else r.status_code


@pytest.fixture(scope="module")
async def gw_client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url) as client:
        yield client


@pytest.mark.parametrize("action", GATEWAY_ACTIONS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["own", "other", "public"])
async def test_gateway_routes(
    gw_client: httpx.AsyncClient, live: Live, action: str, role: str, kind: str
) -> None:
    slug = f"{kind[:2]}-{role[:3]}-{action.replace('.', '-')[:10]}".rstrip("-")
    visibility = "public" if kind == "public" else "private"
    member_id = await _fresh_project(gw_client, live, slug, visibility)
    user = HOLDER[role]
    if kind == "own" and role != "owner":
        r = await gw_client.post(
            f"/projects/{slug}/members",
            json={"subject": live.issuer.subject(user), "role": role},
            headers=live.headers("zed"),
        )
        assert r.status_code == 201
    caller = user if kind == "own" or user != "zed" else "bob"
    got = await _call(gw_client, action, slug, live.headers(caller), member_id)
    if kind == "own":
        assert got == _expected(action, role)
    elif kind == "other":
        assert got == 404
    else:
        assert got == _expected(action, "signed-in")


@pytest.mark.parametrize("action", GATEWAY_ACTIONS)
@pytest.mark.parametrize("kind", ["other", "public"])
async def test_gateway_routes_anonymous(
    gw_client: httpx.AsyncClient, live: Live, action: str, kind: str
) -> None:
    slug = f"an-{kind[:2]}-{action.replace('.', '-')[:12]}".rstrip("-")
    member_id = await _fresh_project(
        gw_client, live, slug, "public" if kind == "public" else "private"
    )
    got = await _call(gw_client, action, slug, {}, member_id)
    if kind == "other":
        assert got in (404, 401)  # 401 where the route needs a token before it looks
        if action == "project.read":
            assert got == 404
    else:
        assert got == _expected(action, "anonymous", anonymous=True)


# ----------------------------------------------------------------------------- embedded mode


def _demo_service() -> FastAPI:
    """A service that guards a route with the shared policy (as datalake/workflows do)."""
    app = create_base_app(service="demo", title="demo", description="demo")

    @app.get("/scopes/{scope}/{action}")
    async def check(
        scope: str, action: str, user: OptionalUser, policy: PolicyDep
    ) -> dict[str, Any]:
        access = await policy.require(user, Action(action), scope=scope)
        return access.model_dump()

    @app.get("/whoami")
    async def whoami(user: CurrentUser) -> dict[str, str]:
        return {"user": user.username}

    return app


async def test_mounted_services_use_the_in_process_directory(
    gw_db_url: str, tmp_path: Path
) -> None:
    issuer = TestIssuer()
    settings = gateway_settings(gw_db_url, issuer, mode="embedded")
    factory = Factory(settings, validator=issuer.validator(), provisioner=RecordingProvisioner())
    demo = link_service(_demo_service(), factory.link)
    gateway = create_app(settings, factory=factory, service_apps={"demo": demo})
    alice, bob, carol = (issuer.headers(u) for u in ("alice", "bob", "carol"))
    async with app_client(gateway) as client:
        await client.post("/projects", json={"name": "emb", "slug": "emb"}, headers=alice)
        await client.post(
            "/projects/emb/groups", json={"group": "/vre/beta", "role": "viewer"}, headers=alice
        )
        ok = await client.get("/demo/scopes/proj.emb/data.write", headers=alice)
        assert ok.status_code == 200, ok.text
        assert ok.json()["role"] == "owner"
        viewer = await client.get("/demo/scopes/proj.emb/data.write", headers=bob)
        assert viewer.status_code == 403
        assert viewer.headers["content-type"] == "application/problem+json"
        assert (await client.get("/demo/scopes/proj.emb/data.read", headers=bob)).status_code == 200
        assert (
            await client.get("/demo/scopes/proj.emb/data.read", headers=carol)
        ).status_code == 404
        assert (await client.get("/demo/scopes/proj.emb/data.read")).status_code == 404
    assert link_of(demo).event_sink is factory.event_sink
