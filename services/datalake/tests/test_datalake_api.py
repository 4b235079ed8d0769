"""The datalake API on a real Rucio, in-process: identity, scopes, DIDs, metadata, rules."""

from __future__ import annotations

import hashlib

import httpx

from vre_common.testing import TestIssuer


async def test_identity_scope_created_on_first_use(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    me = await client.get("/scopes/mine", headers=issuer.headers("alice"))
    assert me.status_code == 200, me.text
    assert me.json() == {"account": "alice", "scope": "user.alice"}
    scopes = await client.get("/scopes", headers=issuer.headers("alice"))
    assert {"name": "user.alice", "account": "alice", "mine": True} in scopes.json()


async def test_upload_get_download_small(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    body = b"hello data lake " * 1000
    put = await client.put(
        f"/files/user.alice/{uid}/hello.txt", content=body, headers=issuer.headers("alice")
    )
    assert put.status_code == 201, put.text
    assert put.json()["md5"] == hashlib.md5(body).hexdigest()
    did = await client.get(f"/dids/user.alice/{uid}/hello.txt", headers=issuer.headers("alice"))
    assert did.status_code == 200, did.text
    assert did.json()["type"] == "file"
    assert did.json()["bytes"] == len(body)
    got = await client.get(f"/files/user.alice/{uid}/hello.txt", headers=issuer.headers("alice"))
    assert got.status_code == 200, got.text
    assert got.content == body
