"""Projects: self-service creation with a scope, listing, update, delete and archive."""

from __future__ import annotations

import httpx
import pytest

from services.gateway.tests.gateway_support import (
    RecordingProvisioner,
    Users,
    add_member,
    create_project,
)
from vre_common.errors import BackendUnavailableError
from vre_common.testing import TestIssuer, app_client
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app


async def test_create_makes_owner_and_scope_with_the_callers_token(
    client: httpx.AsyncClient, as_user: Users, provisioner: RecordingProvisioner
) -> None:
    headers = as_user("alice")
    r = await client.post(
        "/projects",
        json={
            "name": "CTA dark matter",
            "slug": "cta-dm",
            "description": "Reinterpretation",
            "links": [{"title": "code", "url": "https://git.example.org/cta-dm"}],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["scope"] == "proj.cta-dm"
    assert project["role"] == "owner"
    assert project["visibility"] == "private"
    assert project["links"] == [{"title": "code", "url": "https://git.example.org/cta-dm"}]
    [call] = provisioner.calls
    assert call.scope == "proj.cta-dm"
    assert call.project == "cta-dm"
    assert call.quota_bytes == 100 * 2**30
    assert call.token == headers["Authorization"].removeprefix("Bearer ")
    got = await client.get("/projects/cta-dm", headers=headers)
    assert got.status_code == 200
    assert got.json()["role"] == "owner"


async def test_slug_is_derived_from_the_name_and_made_unique(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    first = await client.post(
        "/projects", json={"name": "Dark Mätter Search!"}, headers=as_user("alice")
    )
    second = await client.post(
        "/projects", json={"name": "Dark Matter Search"}, headers=as_user("bob")
    )
    assert first.json()["slug"] == "dark-matter-search"
    assert second.json()["slug"] == "dark-matter-search-2"
    assert len(second.json()["scope"]) <= 25


async def test_invalid_and_duplicate_slugs(client: httpx.AsyncClient, as_user: Users) -> None:
    await create_project(client, as_user("alice"), "taken")
    dup = await client.post(
        "/projects", json={"name": "x", "slug": "taken"}, headers=as_user("bob")
    )
    assert dup.status_code == 409
    assert dup.json()["type"].endswith("/project-exists")
    too_long = await client.post(
        "/projects", json={"name": "x", "slug": "a" * 21}, headers=as_user("bob")
    )
    assert too_long.status_code == 422  # proj. + 21 > 25 characters of a Rucio scope
    bad = await client.post(
        "/projects", json={"name": "x", "slug": "Bad_Slug"}, headers=as_user("bob")
    )
    assert bad.status_code == 422
    underivable = await client.post("/projects", json={"name": "§§"}, headers=as_user("bob"))
    assert underivable.status_code == 422
    anonymous = await client.post("/projects", json={"name": "x"})
    assert anonymous.status_code == 401


async def test_project_limit_per_user(gw_db_url: str, issuer: TestIssuer, as_user: Users) -> None:
    from services.gateway.tests.conftest import gateway_settings

    settings = gateway_settings(gw_db_url, issuer, projects={"max_projects_per_user": 2})
    app = create_app(settings, validator=issuer.validator(), provisioner=RecordingProvisioner())
    async with app_client(app) as client:
        for slug in ("one", "two"):
            await create_project(client, as_user("alice"), slug)
        r = await client.post("/projects", json={"name": "three"}, headers=as_user("alice"))
        assert r.status_code == 403
        assert r.json()["limit"] == 2
        # someone else is not affected
        await create_project(client, as_user("bob"), "bobs")


async def test_creation_groups_restrict_who_may_create(
    gw_db_url: str, issuer: TestIssuer, as_user: Users
) -> None:
    from services.gateway.tests.conftest import gateway_settings

    settings = gateway_settings(gw_db_url, issuer, projects={"create_groups": ["/vre/alpha"]})
    app = create_app(settings, validator=issuer.validator(), provisioner=RecordingProvisioner())
    async with app_client(app) as client:
        await create_project(client, as_user("alice"), "alpha")  # alice is in /vre/alpha
        r = await client.post("/projects", json={"name": "beta"}, headers=as_user("bob"))
        assert r.status_code == 403


async def test_failed_scope_creation_keeps_nothing(
    client: httpx.AsyncClient, as_user: Users, provisioner: RecordingProvisioner
) -> None:
    provisioner.fail = BackendUnavailableError("datalake down")
    r = await client.post("/projects", json={"name": "x", "slug": "lost"}, headers=as_user("alice"))
    assert r.status_code == 503
    provisioner.fail = None
    assert (await client.get("/projects/lost", headers=as_user("alice"))).status_code == 404
    again = await client.post(
        "/projects", json={"name": "x", "slug": "lost"}, headers=as_user("alice")
    )
    assert again.status_code == 201


async def test_listing_mine_and_public(client: httpx.AsyncClient, as_user: Users) -> None:
    await create_project(client, as_user("alice"), "a-private")
    await create_project(client, as_user("alice"), "a-public", visibility="public")
    await create_project(client, as_user("carol"), "c-private")
    await client.post(
        "/projects/c-private/groups",
        json={"group": "/vre/beta", "role": "viewer"},
        headers=as_user("carol"),
    )

    async def slugs(
        headers: dict[str, str] | None, which: str = "all"
    ) -> list[tuple[str, str | None]]:
        r = await client.get("/projects", params={"filter": which}, headers=headers or {})
        assert r.status_code == 200, r.text
        return [(p["slug"], p["role"]) for p in r.json()["items"]]

    assert await slugs(as_user("alice")) == [("a-private", "owner"), ("a-public", "owner")]
    assert await slugs(as_user("bob")) == [("a-public", None), ("c-private", "viewer")]
    assert await slugs(as_user("bob"), "mine") == [("c-private", "viewer")]
    assert await slugs(as_user("carol"), "public") == [("a-public", None)]
    assert await slugs(None) == [("a-public", None)]


async def test_update_fields_and_visibility_rules(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    await create_project(client, as_user("alice"), "upd")
    await add_member(client, as_user("alice"), "upd", as_user.subject("bob"), "maintainer")
    r = await client.patch(
        "/projects/upd", json={"description": "new", "name": "Updated"}, headers=as_user("bob")
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["description"]) == ("Updated", "new")
    vis = await client.patch("/projects/upd", json={"visibility": "public"}, headers=as_user("bob"))
    assert vis.status_code == 403  # visibility is the owners'
    vis = await client.patch(
        "/projects/upd", json={"visibility": "public"}, headers=as_user("alice")
    )
    assert vis.status_code == 200
    assert (await client.get("/projects/upd")).status_code == 200  # now public: anonymous read
    extra = await client.patch("/projects/upd", json={"slug": "other"}, headers=as_user("alice"))
    assert extra.status_code == 422


async def test_delete_refuses_with_data_unless_archived(
    client: httpx.AsyncClient, as_user: Users, provisioner: RecordingProvisioner
) -> None:
    owner = as_user("alice")
    await create_project(client, owner, "full")
    await add_member(client, owner, "full", as_user.subject("bob"), "maintainer")
    provisioner.data.add("proj.full")
    assert (await client.delete("/projects/full", headers=as_user("bob"))).status_code == 403
    refused = await client.delete("/projects/full", headers=owner)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/project-has-data")
    archived = await client.delete("/projects/full", params={"archive": "true"}, headers=owner)
    assert archived.status_code == 204
    got = await client.get("/projects/full", headers=owner)
    assert got.json()["archived"] is True
    # read-only now: reads work, writes are 409
    assert (await client.get("/projects/full/members", headers=owner)).status_code == 200
    for reader in (owner, as_user("bob")):  # the fuzzer's GET .../invitations was a 409
        invitations = await client.get("/projects/full/invitations", headers=reader)
        assert invitations.status_code == 200, invitations.text
    write = await client.patch("/projects/full", json={"name": "x"}, headers=owner)
    assert write.status_code == 409
    assert write.json()["type"].endswith("/project-archived")
    access = await client.get("/projects/-/access", params={"scope": "proj.full"}, headers=owner)
    assert access.json()["archived"] is True


async def test_delete_an_empty_project(client: httpx.AsyncClient, as_user: Users) -> None:
    await create_project(client, as_user("alice"), "empty")
    assert (await client.delete("/projects/empty", headers=as_user("alice"))).status_code == 204
    assert (await client.get("/projects/empty", headers=as_user("alice"))).status_code == 404
    again = await client.post(
        "/projects", json={"name": "e", "slug": "empty"}, headers=as_user("bob")
    )
    assert again.status_code == 201  # the slug is free again (its scope is empty)


async def test_access_endpoint_answers_by_slug_or_scope(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    await create_project(client, as_user("alice"), "acc")
    await client.post(
        "/projects/acc/groups",
        json={"group": "/vre/beta", "role": "member"},
        headers=as_user("alice"),
    )
    by_scope = await client.get(
        "/projects/-/access", params={"scope": "proj.acc"}, headers=as_user("bob")
    )
    assert by_scope.json() == {
        "project": "acc",
        "scope": "proj.acc",
        "visibility": "private",
        "archived": False,
        "role": "member",
    }
    hidden = await client.get(
        "/projects/-/access", params={"project": "acc"}, headers=as_user("carol")
    )
    assert hidden.status_code == 404
    unknown = await client.get(
        "/projects/-/access", params={"project": "nope"}, headers=as_user("bob")
    )
    assert unknown.status_code == 404
    both = await client.get("/projects/-/access", params={"project": "acc", "scope": "proj.acc"})
    assert both.status_code == 422
    table = await client.get("/projects/-/permissions")
    assert table.json()["actions"]["data.write"]["grantees"] == ["maintainer", "member", "owner"]


@pytest.mark.parametrize("mode", ["verify"])
async def test_out_of_date_schema_refuses_to_start(
    tmp_path: object, issuer: TestIssuer, mode: str
) -> None:
    from pathlib import Path

    from services.gateway.tests.conftest import gateway_settings
    from vre_common.migrations import SchemaOutOfDateError

    assert isinstance(tmp_path, Path)
    settings: GatewaySettings = gateway_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", issuer, migrations=mode
    )
    app = create_app(settings, validator=issuer.validator(), provisioner=RecordingProvisioner())
    with pytest.raises(SchemaOutOfDateError):
        async with app_client(app):
            pass


async def test_no_database_write_lock_is_held_while_the_scope_is_made(
    tmp_path: object, issuer: TestIssuer, as_user: Users
) -> None:
    """The datalake may take a while to create a project's Rucio scope: meanwhile other
    requests must be able to write (on SQLite one open write transaction stops them all)."""
    import sqlite3
    from pathlib import Path

    from services.gateway.tests.conftest import gateway_settings

    db = Path(str(tmp_path)) / "gateway.db"
    seen: list[str] = []

    class WritingWhileProvisioning(RecordingProvisioner):
        async def create_scope(
            self, scope: str, *, project: str, quota_bytes: int | None, token: str | None
        ) -> None:
            other = sqlite3.connect(db, timeout=0)  # fail at once if a writer holds the lock
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                seen.append("could write")
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
            finally:
                other.close()
            await super().create_scope(scope, project=project, quota_bytes=quota_bytes, token=token)

    settings = gateway_settings(f"sqlite+aiosqlite:///{db}", issuer)
    app = create_app(settings, validator=issuer.validator(), provisioner=WritingWhileProvisioning())
    async with app_client(app) as client:
        r = await client.post("/projects", json={"name": "Lock free"}, headers=as_user("alice"))
    assert r.status_code == 201, r.text
    assert seen == ["could write"]
