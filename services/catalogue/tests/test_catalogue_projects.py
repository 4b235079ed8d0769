"""Entries owned by a Science Project: written by the project's maintainers (`catalogue.write`).

The catalogue is mounted in the gateway (in-process project directory, real gateway database);
the catalogue's own database runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.catalogue.tests.support.helpers import Users, codemeta
from services.gateway.tests.gateway_support import RecordingProvisioner
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.main import create_app
from vre_common.testing import TestIssuer, app_client
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway

SLUG = "cta-tools"


@dataclass
class Env:
    http: httpx.AsyncClient
    as_user: Users
    issuer: TestIssuer

    async def register(
        self, user: str, document: dict[str, Any], project: str | None = None
    ) -> httpx.Response:
        params = {"project": project} if project else {}
        return await self.http.post(
            "/catalogue/software", json=document, params=params, headers=self.as_user(user)
        )

    async def patch(self, user: str, software_id: int, patch: dict[str, Any]) -> int:
        r = await self.http.patch(
            f"/catalogue/software/{software_id}",
            json=patch,
            headers={**self.as_user(user), "Content-Type": "application/merge-patch+json"},
        )
        return r.status_code


@pytest.fixture
async def env(
    settings: CatalogueSettings, issuer: TestIssuer, as_user: Users, tmp_path: Path
) -> AsyncIterator[Env]:
    gw_settings = GatewaySettings.model_validate(
        {
            "mode": "embedded",
            "data": tmp_path,
            "auth": issuer.auth_settings(),
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"},
            "rate_limit": {"enabled": False},
            "search": {"sources": ["projects"]},
        }
    )
    factory = Factory(gw_settings, validator=issuer.validator(), provisioner=RecordingProvisioner())
    gateway = create_gateway(
        gw_settings,
        factory=factory,
        service_apps={"catalogue": create_app(settings, link=factory.link)},
    )
    async with app_client(gateway) as http:
        env = Env(http, as_user, issuer)
        alice = as_user("alice")
        r = await http.post("/projects", json={"name": "CTA tools", "slug": SLUG}, headers=alice)
        assert r.status_code == 201, r.text
        r = await http.post(
            f"/projects/{SLUG}/groups", json={"group": "/vre/beta", "role": "member"}, headers=alice
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            f"/projects/{SLUG}/members",
            json={"subject": issuer.subject("mia"), "role": "maintainer"},
            headers=alice,
        )
        assert r.status_code == 201, r.text
        yield env


async def test_project_entries_are_written_by_the_projects_maintainers(env: Env) -> None:
    gammapy = codemeta("gammapy_codemeta3.json")
    assert (await env.register("bob", gammapy, SLUG)).status_code == 403  # a member
    assert (await env.register("carol", gammapy, SLUG)).status_code == 404  # private project
    made = await env.register("mia", gammapy, SLUG)
    assert made.status_code == 201, made.text
    entry = made.json()["software"]
    assert entry["project"] == SLUG
    sid = entry["id"]
    hits = await env.http.get("/catalogue/software/search", params={"q": "gammapy"})
    assert [h["project"] for h in hits.json()["items"]] == [SLUG]

    assert await env.patch("alice", sid, {"description": "by the owner"}) == 200
    assert await env.patch("mia", sid, {"description": "by a maintainer"}) == 200
    assert await env.patch("bob", sid, {"description": "by a member"}) == 403
    # the entry is public, so an outsider is told no rather than "no such thing"
    assert await env.patch("carol", sid, {"description": "by an outsider"}) == 403
    # curator and registrant rules are for personal entries only
    assert await env.patch("curator", sid, {"description": "by a curator"}) == 403
    members = (await env.http.get(f"/projects/{SLUG}/members", headers=env.as_user("alice"))).json()
    mia = next(m for m in members["items"] if m["role"] == "maintainer")
    demoted = await env.http.patch(
        f"/projects/{SLUG}/members/{mia['id']}",
        json={"role": "viewer"},
        headers=env.as_user("alice"),
    )
    assert demoted.status_code == 200, demoted.text
    assert await env.patch("mia", sid, {"description": "by the registrant"}) == 403

    # a new release stays the project's; naming another owner is a conflict
    release = {**codemeta("gammapy_codemeta3.json"), "softwareVersion": "9.9"}
    other = await env.http.post(
        "/projects", json={"name": "Other", "slug": "other"}, headers=env.as_user("alice")
    )
    assert other.status_code == 201, other.text
    conflict = await env.register("alice", release, "other")
    assert conflict.status_code == 409, conflict.text
    added = await env.register("alice", release)
    assert added.status_code == 201, added.text
    assert added.json()["software"]["project"] == SLUG

    archived = await env.http.delete(
        f"/projects/{SLUG}", params={"archive": "true"}, headers=env.as_user("alice")
    )
    assert archived.status_code == 204, archived.text
    assert await env.patch("alice", sid, {"description": "read-only now"}) == 409


async def test_personal_entries_keep_their_rules(env: Env) -> None:
    made = await env.register("carol", codemeta("ctapipe_codemeta2.json"))
    assert made.status_code == 201, made.text
    sid = made.json()["software"]["id"]
    assert made.json()["software"]["project"] is None
    assert await env.patch("bob", sid, {"description": "not mine"}) == 403
    assert await env.patch("curator", sid, {"description": "curated"}) == 200
    assert await env.patch("carol", sid, {"description": "mine"}) == 200


async def test_without_a_gateway_project_entries_are_unavailable(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    r = await client.post(
        "/software",
        json=codemeta("gammapy_codemeta3.json"),
        params={"project": SLUG},
        headers=as_user("alice"),
    )
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/projects-unavailable")
