"""Who may write: the registrant, curators and administrators; others get 403, anonymous 401."""

from __future__ import annotations

import httpx
import pytest

from services.catalogue.tests.support.helpers import Users, codemeta


@pytest.fixture
async def entry_id(client: httpx.AsyncClient, as_user: Users) -> int:
    response = await client.post(
        "/software", json=codemeta("gammapy_codemeta3.json"), headers=as_user("alice")
    )
    assert response.status_code == 201, response.text
    entry: int = response.json()["software"]["id"]
    return entry


async def test_anonymous_reads(client: httpx.AsyncClient, entry_id: int) -> None:
    assert (await client.get(f"/software/{entry_id}")).status_code == 200
    assert (await client.get(f"/software/{entry_id}/versions")).status_code == 200
    assert (await client.get(f"/software/{entry_id}/codemeta")).status_code == 200
    assert (await client.get(f"/software/{entry_id}/zenodo")).status_code == 200
    assert (await client.get("/software/search", params={"q": "gammapy"})).json()["total"] == 1


async def test_anonymous_writes_refused(client: httpx.AsyncClient, entry_id: int) -> None:
    patch = await client.patch(f"/software/{entry_id}", json={"description": "x"})
    assert patch.status_code == 401
    assert (await client.delete(f"/software/{entry_id}")).status_code == 401
    env = await client.post(
        f"/software/{entry_id}/versions/1.2/environments", json={"image": "gammapy:1.2"}
    )
    assert env.status_code == 401


@pytest.mark.parametrize("user", ["bob", "carol"])
async def test_other_users_may_not_edit(
    client: httpx.AsyncClient, as_user: Users, entry_id: int, user: str
) -> None:
    patch = await client.patch(
        f"/software/{entry_id}", json={"description": "hijacked"}, headers=as_user(user)
    )
    assert patch.status_code == 403
    assert patch.json()["type"].endswith("/not-editable")
    release = codemeta("gammapy_codemeta3.json")
    release["softwareVersion"] = "1.3"
    assert (await client.post("/software", json=release, headers=as_user(user))).status_code == 403
    assert (await client.delete(f"/software/{entry_id}", headers=as_user(user))).status_code == 403
    env = await client.post(
        f"/software/{entry_id}/versions/1.2/environments",
        json={"image": "gammapy:1.2"},
        headers=as_user(user),
    )
    assert env.status_code == 403
    assert (await client.get(f"/software/{entry_id}")).json()["description"].startswith("Gammapy")


async def test_owner_edits(client: httpx.AsyncClient, as_user: Users, entry_id: int) -> None:
    patch = await client.patch(
        f"/software/{entry_id}",
        json={"description": "Gamma-ray astronomy in Python.", "keywords": ["gamma-ray"]},
        headers={**as_user("alice"), "Content-Type": "application/merge-patch+json"},
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["software"]["description"] == "Gamma-ray astronomy in Python."
    assert patch.json()["software"]["keywords"] == ["gamma-ray"]
    exported = await client.get(f"/software/{entry_id}/codemeta")
    assert exported.json()["keywords"] == ["gamma-ray"]


async def test_patch_is_validated_as_a_whole(
    client: httpx.AsyncClient, as_user: Users, entry_id: int
) -> None:
    patch = await client.patch(
        f"/software/{entry_id}",
        json={"readme": None, "datePublished": "yesterday", "version": "1.3"},
        headers=as_user("alice"),
    )
    assert patch.status_code == 422
    found = {(e["loc"][0], e["type"]) for e in patch.json()["errors"]}
    assert found == {
        ("readme", "missing"),
        ("datePublished", "date_invalid"),
        ("version", "version_conflict"),
    }
    conflict = next(e for e in patch.json()["errors"] if e["type"] == "version_conflict")
    assert "'1.3'" in conflict["msg"]  # both values are named
    assert "'1.2'" in conflict["msg"]
    unchanged = await client.get(f"/software/{entry_id}/codemeta")
    assert unchanged.json()["readme"] == "https://gammapy.org"


@pytest.mark.parametrize("user", ["curator", "admin"])
async def test_curators_edit_any_entry(
    client: httpx.AsyncClient, as_user: Users, entry_id: int, user: str
) -> None:
    patch = await client.patch(
        f"/software/{entry_id}", json={"description": "Curated."}, headers=as_user(user)
    )
    assert patch.status_code == 200, patch.text
    release = codemeta("gammapy_codemeta3.json")
    release.update(softwareVersion="1.3", datePublished="2024-11-28")
    added = await client.post("/software", json=release, headers=as_user(user))
    assert added.status_code == 201
    assert added.json()["software"]["registrant"] == "alice"  # ownership does not move
    assert (await client.delete(f"/software/{entry_id}", headers=as_user(user))).status_code == 204
    assert (await client.get(f"/software/{entry_id}")).status_code == 404


async def test_delete_versions(client: httpx.AsyncClient, as_user: Users, entry_id: int) -> None:
    release = codemeta("gammapy_codemeta3.json")
    release.update(softwareVersion="1.3", datePublished="2024-11-28")
    await client.post("/software", json=release, headers=as_user("alice"))
    gone = await client.delete(f"/software/{entry_id}/versions/1.3", headers=as_user("alice"))
    assert gone.status_code == 204
    assert (await client.get(f"/software/{entry_id}")).json()["latest_version"] == "1.2"
    missing = await client.delete(f"/software/{entry_id}/versions/9.9", headers=as_user("alice"))
    assert missing.status_code == 404
    last = await client.delete(f"/software/{entry_id}/versions/1.2", headers=as_user("alice"))
    assert last.status_code == 204
    assert (await client.get(f"/software/{entry_id}")).status_code == 404


async def test_environments(client: httpx.AsyncClient, as_user: Users, entry_id: int) -> None:
    image = {
        "kind": "container",
        "image": "ghcr.io/gammapy/gammapy:v1.2",
        "digest": "sha256:" + "a" * 64,
        "description": "Official image",
    }
    created = await client.post(
        f"/software/{entry_id}/versions/1.2/environments", json=image, headers=as_user("alice")
    )
    assert created.status_code == 201, created.text
    env = created.json()
    assert env["version"] == "1.2"
    assert env["software_id"] == entry_id
    dup = await client.post(
        f"/software/{entry_id}/versions/1.2/environments", json=image, headers=as_user("alice")
    )
    assert dup.status_code == 409
    bad = await client.post(
        f"/software/{entry_id}/versions/1.2/environments",
        json={"image": "x", "digest": "md5:abc"},
        headers=as_user("alice"),
    )
    assert bad.status_code == 422
    listed = await client.get(f"/software/{entry_id}/environments", params={"version": "1.2"})
    assert [e["image"] for e in listed.json()["items"]] == ["ghcr.io/gammapy/gammapy:v1.2"]
    release = await client.get(f"/software/{entry_id}/versions/1.2")
    assert release.json()["environments"][0]["digest"] == "sha256:" + "a" * 64
    removed = await client.delete(
        f"/software/{entry_id}/environments/{env['id']}", headers=as_user("alice")
    )
    assert removed.status_code == 204
    assert (await client.get(f"/software/{entry_id}/environments")).json()["items"] == []


async def test_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/software/999")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/software-not-found")
    assert (await client.get("/software/999/zenodo")).status_code == 404
