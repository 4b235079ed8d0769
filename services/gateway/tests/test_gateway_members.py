"""Members, group bindings, invitations, leaving, ownership: the rules around roles."""

from __future__ import annotations

import httpx

from services.gateway.tests.gateway_support import Users, add_member, create_project


async def _role(client: httpx.AsyncClient, headers: dict[str, str], slug: str) -> str | None:
    r = await client.get(f"/projects/{slug}", headers=headers)
    return r.json()["role"] if r.status_code == 200 else None


async def test_add_by_subject_and_by_known_username(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "team")
    # by user name: only someone the gateway has seen
    unknown = await client.post(
        "/projects/team/members", json={"username": "dave", "role": "member"}, headers=alice
    )
    assert unknown.status_code == 404
    await client.get("/invitations", headers=as_user("dave"))  # dave uses the VRE once
    added = await client.post(
        "/projects/team/members", json={"username": "dave", "role": "member"}, headers=alice
    )
    assert added.status_code == 201, added.text
    assert added.json()["subject"] == as_user.subject("dave")
    assert await _role(client, as_user("dave"), "team") == "member"
    dup = await client.post(
        "/projects/team/members",
        json={"subject": as_user.subject("dave"), "role": "viewer"},
        headers=alice,
    )
    assert dup.status_code == 409
    both = await client.post(
        "/projects/team/members", json={"subject": "x", "username": "y"}, headers=alice
    )
    assert both.status_code == 422
    members = (await client.get("/projects/team/members", headers=as_user("dave"))).json()
    assert [(m["username"], m["role"]) for m in members["items"]] == [
        ("alice", "owner"),
        ("dave", "member"),
    ]


async def test_only_owners_touch_the_owner_role(client: httpx.AsyncClient, as_user: Users) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "own")
    bob = await add_member(client, alice, "own", as_user.subject("bob"), "maintainer")
    carol_add = await client.post(
        "/projects/own/members",
        json={"subject": as_user.subject("carol"), "role": "owner"},
        headers=as_user("bob"),
    )
    assert carol_add.status_code == 403
    carol = await add_member(client, as_user("bob"), "own", as_user.subject("carol"), "maintainer")
    members = (await client.get("/projects/own/members", headers=alice)).json()["items"]
    alice_id = next(m["id"] for m in members if m["username"] == "alice")
    demote_owner = await client.patch(
        f"/projects/own/members/{alice_id}", json={"role": "viewer"}, headers=as_user("bob")
    )
    assert demote_owner.status_code == 403
    remove_owner = await client.delete(f"/projects/own/members/{alice_id}", headers=as_user("bob"))
    assert remove_owner.status_code == 403
    # maintainers manage the rest
    r = await client.patch(
        f"/projects/own/members/{carol['id']}", json={"role": "viewer"}, headers=as_user("bob")
    )
    assert r.status_code == 200
    assert r.json()["role"] == "viewer"
    r = await client.patch(
        f"/projects/own/members/{bob['id']}", json={"role": "owner"}, headers=alice
    )
    assert r.status_code == 200
    members_as_viewer = await client.post(
        "/projects/own/members", json={"subject": "x", "role": "viewer"}, headers=as_user("carol")
    )
    assert members_as_viewer.status_code == 403


async def test_at_least_one_owner_always(client: httpx.AsyncClient, as_user: Users) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "solo")
    members = (await client.get("/projects/solo/members", headers=alice)).json()["items"]
    me = members[0]["id"]
    leave = await client.post("/projects/solo/leave", headers=alice)
    assert leave.status_code == 409
    assert leave.json()["type"].endswith("/last-owner")
    demote = await client.patch(
        f"/projects/solo/members/{me}", json={"role": "member"}, headers=alice
    )
    assert demote.status_code == 409
    remove = await client.delete(f"/projects/solo/members/{me}", headers=alice)
    assert remove.status_code == 409
    # with a second owner, the first may leave
    bob = await add_member(client, alice, "solo", as_user.subject("bob"), "owner")
    assert (await client.post("/projects/solo/leave", headers=alice)).status_code == 204
    assert await _role(client, alice, "solo") is None
    last = await client.delete(f"/projects/solo/members/{bob['id']}", headers=as_user("bob"))
    assert last.status_code == 409


async def test_transfer_ownership(client: httpx.AsyncClient, as_user: Users) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "xfer")
    bob = await add_member(client, alice, "xfer", as_user.subject("bob"), "member")
    not_owner = await client.post(
        "/projects/xfer/transfer", json={"member_id": bob["id"]}, headers=as_user("bob")
    )
    assert not_owner.status_code == 403
    r = await client.post("/projects/xfer/transfer", json={"member_id": bob["id"]}, headers=alice)
    assert r.status_code == 200, r.text
    assert await _role(client, as_user("bob"), "xfer") == "owner"
    assert await _role(client, alice, "xfer") == "maintainer"
    missing = await client.post(
        "/projects/xfer/transfer", json={"member_id": "nope"}, headers=as_user("bob")
    )
    assert missing.status_code == 404


async def test_group_binding_role_is_the_highest(client: httpx.AsyncClient, as_user: Users) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "grp")
    bob = as_user("bob")  # in /vre and /vre/beta
    assert await _role(client, bob, "grp") is None
    r = await client.post(
        "/projects/grp/groups", json={"group": "/vre/beta", "role": "member"}, headers=alice
    )
    assert r.status_code == 200, r.text
    assert await _role(client, bob, "grp") == "member"
    await client.post(
        "/projects/grp/groups", json={"group": "/vre", "role": "viewer"}, headers=alice
    )
    assert await _role(client, bob, "grp") == "member"  # max(member, viewer)
    await add_member(client, alice, "grp", as_user.subject("bob"), "maintainer")
    assert await _role(client, bob, "grp") == "maintainer"  # direct beats group
    owner_group = await client.post(
        "/projects/grp/groups", json={"group": "/vre/beta", "role": "owner"}, headers=alice
    )
    assert owner_group.status_code == 422
    groups = (await client.get("/projects/grp/groups", headers=bob)).json()["items"]
    assert [(g["group"], g["role"]) for g in groups] == [
        ("/vre", "viewer"),
        ("/vre/beta", "member"),
    ]
    # a child group does not imply its parent: carol (/other) gets nothing
    assert await _role(client, as_user("carol"), "grp") is None
    gone = await client.delete("/projects/grp/groups", params={"group": "/vre/beta"}, headers=alice)
    assert gone.status_code == 204
    missing = await client.delete(
        "/projects/grp/groups", params={"group": "/vre/beta"}, headers=alice
    )
    assert missing.status_code == 404
    # leaving drops the direct role; the group's remains
    assert (await client.post("/projects/grp/leave", headers=bob)).status_code == 204
    assert await _role(client, bob, "grp") == "viewer"
    again = await client.post("/projects/grp/leave", headers=bob)
    assert again.status_code == 404


async def test_invitations_by_username_are_accepted_by_the_invitee_only(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "inv")
    r = await client.post(
        "/projects/inv/invitations",
        json={"username": "bob", "role": "maintainer", "message": "join us"},
        headers=alice,
    )
    assert r.status_code == 201, r.text
    invitation = r.json()
    assert invitation["state"] == "pending"
    assert invitation["invited_by"] == "alice"
    mine = (await client.get("/invitations", headers=as_user("bob"))).json()["items"]
    assert [i["id"] for i in mine] == [invitation["id"]]
    assert mine[0]["project"] == "inv"
    assert (await client.get("/invitations", headers=as_user("carol"))).json()["items"] == []
    stolen = await client.post(f"/invitations/{invitation['id']}/accept", headers=as_user("carol"))
    assert stolen.status_code == 404
    # the invitation alone gives nothing
    assert await _role(client, as_user("bob"), "inv") is None
    accepted = await client.post(f"/invitations/{invitation['id']}/accept", headers=as_user("bob"))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "maintainer"
    assert await _role(client, as_user("bob"), "inv") == "maintainer"
    twice = await client.post(f"/invitations/{invitation['id']}/accept", headers=as_user("bob"))
    assert twice.status_code == 409
    listed = (await client.get("/projects/inv/invitations", headers=alice)).json()["items"]
    assert [i["state"] for i in listed] == ["accepted"]


async def test_invitation_by_subject_decline_and_revoke(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    alice = as_user("alice")
    await create_project(client, alice, "inv2")
    one = (
        await client.post(
            "/projects/inv2/invitations", json={"subject": as_user.subject("carol")}, headers=alice
        )
    ).json()
    assert (
        await client.post(f"/invitations/{one['id']}/decline", headers=as_user("carol"))
    ).status_code == 204
    assert (
        await client.post(f"/invitations/{one['id']}/accept", headers=as_user("carol"))
    ).status_code == 409
    two = (
        await client.post(
            "/projects/inv2/invitations", json={"subject": as_user.subject("carol")}, headers=alice
        )
    ).json()
    assert (
        await client.delete(f"/projects/inv2/invitations/{two['id']}", headers=alice)
    ).status_code == 204
    assert (
        await client.post(f"/invitations/{two['id']}/accept", headers=as_user("carol"))
    ).status_code == 409
    owner = await client.post(
        "/projects/inv2/invitations", json={"username": "carol", "role": "owner"}, headers=alice
    )
    assert owner.status_code == 201
    assert (
        await client.post(f"/invitations/{owner.json()['id']}/accept", headers=as_user("carol"))
    ).json()["role"] == "owner"
    member = await client.post(
        "/projects/inv2/invitations", json={"subject": as_user.subject("carol")}, headers=alice
    )
    assert member.status_code == 409  # already a member


async def test_expired_invitation_cannot_be_accepted(gw_db_url: str, as_user: Users) -> None:
    from services.gateway.tests.conftest import gateway_settings
    from services.gateway.tests.gateway_support import RecordingProvisioner
    from vre_common.testing import app_client
    from vre_gateway.main import create_app

    issuer = as_user.issuer
    app = create_app(
        gateway_settings(gw_db_url, issuer),
        validator=issuer.validator(),
        provisioner=RecordingProvisioner(),
    )
    async with app_client(app) as client:
        await create_project(client, as_user("alice"), "exp")
        inv = (
            await client.post(
                "/projects/exp/invitations", json={"username": "bob"}, headers=as_user("alice")
            )
        ).json()
        # age the invitation in the database (the clock is the database's)
        from datetime import UTC, datetime, timedelta

        from sqlalchemy import update

        from vre_gateway.storage.schema import InvitationRow

        async with app.state.factory.database.sessionmaker.begin() as session:
            await session.execute(
                update(InvitationRow)
                .where(InvitationRow.id == inv["id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        r = await client.post(f"/invitations/{inv['id']}/accept", headers=as_user("bob"))
        assert r.status_code == 409
        assert "expired" in r.json()["detail"]
        assert (await client.get("/invitations", headers=as_user("bob"))).json()["items"] == []


async def test_an_invitation_says_whether_the_invitee_has_used_the_vre(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    """Inviting a misspelt user name is not a silent success: the answer says nobody of that
    name has signed in yet (the invitation still waits for them)."""
    alice = as_user("alice")
    await create_project(client, alice, "who")
    typo = await client.post(
        "/projects/who/invitations", json={"username": "dvae", "role": "member"}, headers=alice
    )
    assert typo.status_code == 201, typo.text
    assert typo.json()["invitee_known"] is False
    await client.get("/invitations", headers=as_user("dave"))  # dave uses the VRE once
    known = await client.post(
        "/projects/who/invitations", json={"username": "dave", "role": "member"}, headers=alice
    )
    assert known.json()["invitee_known"] is True
    by_subject = await client.post(
        "/projects/who/invitations",
        json={"subject": as_user.subject("dave"), "role": "viewer"},
        headers=alice,
    )
    assert by_subject.json()["invitee_known"] is True
    listed = (await client.get("/projects/who/invitations", headers=alice)).json()["items"]
    assert sorted((i["username"] or "", i["invitee_known"]) for i in listed) == [
        ("", True),
        ("dave", True),
        ("dvae", False),
    ]
