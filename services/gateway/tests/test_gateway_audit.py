"""The audit log: every write, with who, what, when and the request id; for maintainers+."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from services.gateway.tests.gateway_support import Users, add_member, create_project


async def test_every_write_is_recorded_with_its_request_id(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    alice = as_user("alice")
    before = datetime.now(UTC) - timedelta(seconds=5)
    r = await client.post(
        "/projects",
        json={"name": "Audited", "slug": "aud"},
        headers={**alice, "X-Request-ID": "rid-create"},
    )
    assert r.status_code == 201
    bob = await add_member(client, alice, "aud", as_user.subject("bob"), "member")
    await client.patch(
        f"/projects/aud/members/{bob['id']}", json={"role": "maintainer"}, headers=alice
    )
    await client.post(
        "/projects/aud/groups", json={"group": "/vre/beta", "role": "viewer"}, headers=alice
    )
    await client.delete("/projects/aud/groups", params={"group": "/vre/beta"}, headers=alice)
    await client.patch("/projects/aud", json={"description": "d"}, headers=as_user("bob"))
    inv = (
        await client.post("/projects/aud/invitations", json={"username": "carol"}, headers=alice)
    ).json()
    await client.post(f"/invitations/{inv['id']}/accept", headers=as_user("carol"))
    await client.post("/projects/aud/leave", headers=as_user("carol"))
    # a refused write leaves no row
    refused = await client.patch(
        "/projects/aud", json={"visibility": "public"}, headers=as_user("bob")
    )
    assert refused.status_code == 403

    page = await client.get("/projects/aud/audit", headers=as_user("bob"))
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [i["action"] for i in items] == [
        "member.leave",
        "invitation.accept",
        "invitation.create",
        "project.update",
        "group.unbind",
        "group.bind",
        "member.role",
        "member.add",
        "project.create",
    ]
    create = items[-1]
    assert create["request_id"] == "rid-create"
    assert create["actor_name"] == "alice"
    assert create["actor"] == f"{as_user.issuer.issuer}|{as_user.subject('alice')}"
    assert create["source"] == "gateway"
    assert create["target"] == "proj.aud"
    assert datetime.fromisoformat(create["at"]) >= before
    assert items[0]["actor_name"] == "carol"
    assert items[6]["detail"] == {"from": "member", "to": "maintainer"}
    assert all(i["request_id"] for i in items)


async def test_audit_is_for_maintainers_and_owners_and_pages(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "pages", visibility="public")
    await add_member(client, alice, "pages", as_user.subject("bob"), "member")
    for n in range(5):
        await client.patch("/projects/pages", json={"description": str(n)}, headers=alice)
    assert (await client.get("/projects/pages/audit", headers=as_user("bob"))).status_code == 403
    assert (await client.get("/projects/pages/audit", headers=as_user("carol"))).status_code == 403
    assert (await client.get("/projects/pages/audit")).status_code == 401
    first = (await client.get("/projects/pages/audit", params={"limit": 4}, headers=alice)).json()
    assert len(first["items"]) == 4
    rest = (
        await client.get(
            "/projects/pages/audit", params={"before": first["next_before"]}, headers=alice
        )
    ).json()
    assert [i["action"] for i in rest["items"]] == [
        "project.update",
        "member.add",
        "project.create",
    ]
    assert rest["next_before"] is None
