"""The datalake API on a real Rucio (SQLite), called in-process with signed tokens."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest

from vre_common.testing import TestIssuer, app_client
from vre_datalake.config import DatalakeSettings
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio

PROBLEM = "application/problem+json"


def h(issuer: TestIssuer, user: str = "alice", **claims: object) -> dict[str, str]:
    return issuer.headers(user, **claims)


def on_disk(root: Path, fragment: str) -> list[Path]:
    """Every file under an RSE folder whose path contains ``fragment``."""
    return [p for p in root.rglob("*") if p.is_file() and fragment in str(p)]


def is_file(path: str) -> bool:
    return Path(path).is_file()


def read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


async def upload(
    client: httpx.AsyncClient, issuer: TestIssuer, path: str, body: bytes, **params: str
) -> httpx.Response:
    return await client.put(f"/files/{path}", content=body, headers=h(issuer), params=params)


# ---------------------------------------------------------------------------- identity


async def test_identity_scope_created_on_first_use(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    me = await client.get("/scopes/mine", headers=h(issuer))
    assert me.status_code == 200, me.text
    assert me.json() == {"account": "alice", "scope": "user.alice"}
    scopes = await client.get("/scopes", headers=h(issuer))
    mine = {"name": "user.alice", "account": "alice", "mine": True, "project": None}
    assert mine in scopes.json()
    # bob's scope exists in Rucio, but alice may not read it: it is not listed to her
    assert (await client.get("/scopes/mine", headers=h(issuer, "bob"))).status_code == 200
    names = {s["name"] for s in (await client.get("/scopes", headers=h(issuer))).json()}
    assert "user.bob" not in names
    assert not {n for n in names if n.startswith("user.") and n != "user.alice"}
    usage = await client.get("/usage", headers=h(issuer))
    assert usage.status_code == 200, usage.text
    limits = {u["rse"]: u["limit_bytes"] for u in usage.json()["rses"]}
    assert limits["VRE-DISK-1"] == 4 * 1024**3


async def test_same_username_other_subject_gets_suffixed_account(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    name = f"Dana Ünïcode {uid}"
    first = await client.get("/scopes/mine", headers=h(issuer, name, sub=f"sub-a-{uid}"))
    second = await client.get("/scopes/mine", headers=h(issuer, name, sub=f"sub-b-{uid}"))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    a, b = first.json()["account"], second.json()["account"]
    assert a.startswith("dana-unicode-")
    assert a != b
    assert b.endswith("-2")
    assert len(f"user.{b}") <= 25
    again = await client.get("/scopes/mine", headers=h(issuer, name, sub=f"sub-a-{uid}"))
    assert again.json()["account"] == a


# ---------------------------------------------------------------------------- files


async def test_upload_get_download_range_etag(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    body = bytes(range(256)) * 400
    put = await upload(client, issuer, f"user.alice/{uid}/data.bin", body)
    assert put.status_code == 201, put.text
    assert put.json()["md5"] == hashlib.md5(body).hexdigest()
    assert put.json()["created"] is True
    did = await client.get(f"/dids/user.alice/{uid}/data.bin", headers=h(issuer))
    assert did.status_code == 200, did.text
    assert did.json()["type"] == "file"
    assert did.json()["bytes"] == len(body)
    assert did.json()["adler32"] == put.json()["adler32"]

    got = await client.get(f"/files/user.alice/{uid}/data.bin", headers=h(issuer))
    assert got.status_code == 200, got.text
    assert got.content == body
    assert got.headers["content-length"] == str(len(body))
    assert got.headers["x-checksum-md5"] == hashlib.md5(body).hexdigest()
    etag = got.headers["etag"]
    assert etag == f'"adler32-{put.json()["adler32"]}"'

    part = await client.get(
        f"/files/user.alice/{uid}/data.bin", headers={**h(issuer), "Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert part.content == body[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
    tail = await client.get(
        f"/files/user.alice/{uid}/data.bin", headers={**h(issuer), "Range": "bytes=-10"}
    )
    assert tail.status_code == 206
    assert tail.content == body[-10:]
    beyond = await client.get(
        f"/files/user.alice/{uid}/data.bin",
        headers={**h(issuer), "Range": f"bytes={len(body)}-"},
    )
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(body)}"
    cached = await client.get(
        f"/files/user.alice/{uid}/data.bin", headers={**h(issuer), "If-None-Match": etag}
    )
    assert cached.status_code == 304


async def test_reupload_same_content_is_idempotent_other_content_conflicts(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str, rse_root: Path
) -> None:
    body = b"first version\n" * 100
    assert (await upload(client, issuer, f"user.alice/{uid}.txt", body)).status_code == 201
    same = await upload(client, issuer, f"user.alice/{uid}.txt", body)
    assert same.status_code == 200, same.text
    assert same.json()["created"] is False
    other = await upload(client, issuer, f"user.alice/{uid}.txt", b"second version\n" * 100)
    assert other.status_code == 409, other.text
    assert other.headers["content-type"] == PROBLEM
    # the same size: only the checksums of the bytes (written while Rucio was asked) differ
    same_size = await upload(client, issuer, f"user.alice/{uid}.txt", b"First version\n" * 100)
    assert same_size.status_code == 409, same_size.text
    assert "adler32" in same_size.json()["detail"]
    files = on_disk(rse_root, uid)
    assert len(files) == 1, files  # no temporary or second copy left behind
    assert files[0].read_bytes() == body


async def test_checksum_headers(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str, rse_root: Path
) -> None:
    body = b"checked bytes" * 1000
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()

    wrong = await client.put(
        f"/files/user.alice/{uid}/bad.bin",
        content=body,
        headers={**h(issuer), "Content-MD5": bad},
    )
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["received_md5"] == hashlib.md5(body).hexdigest()
    missing = await client.get(f"/dids/user.alice/{uid}/bad.bin", headers=h(issuer))
    assert missing.status_code == 404
    assert on_disk(rse_root, uid) == []

    digest = await client.put(
        f"/files/user.alice/{uid}/good.bin",
        content=body,
        headers={**h(issuer), "Digest": f"sha-256=abc, md5={good}"},
    )
    assert digest.status_code == 201, digest.text
    malformed = await client.put(
        f"/files/user.alice/{uid}/x.bin", content=body, headers={**h(issuer), "Content-MD5": "!"}
    )
    assert malformed.status_code == 400


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("user.alice/a/%2E%2E/b", "name"),
        ("user.alice/%2E%2E", "name"),
        ("user.alice/%2Fabsolute", "name"),
        ("user.alice/a//b", "name"),
        ("user.alice/ctrl%01char", "name"),
        ("user.alice/tab%09name", "name"),
        ("user.alice/" + "x" * 251, "name"),
        ("user.alice/d%C3%A9j%C3%A0", "name"),
        ("user.alice/dir/content", "name"),
        ("bad%20scope/file", "scope"),
        ("s" * 26 + "/file", "scope"),
    ],
)
async def test_bad_names_are_422_with_field(
    client: httpx.AsyncClient, issuer: TestIssuer, path: str, field: str
) -> None:
    response = await upload(client, issuer, path, b"x")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"][-1] == field
    if not path.endswith("/content"):  # that URL is the content listing of "dir"
        lookup = await client.get(f"/dids/{path}", headers=h(issuer))
        assert lookup.status_code == 422


async def test_scopes_and_rses_errors(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    await client.get("/scopes/mine", headers=h(issuer, "bob"))
    assert (await upload(client, issuer, "user.bob/stolen.txt", b"x")).status_code == 403
    read = await client.get("/dids/user.bob", headers=h(issuer))
    assert read.status_code == 403
    assert read.json()["type"].endswith("/scope-forbidden")
    assert (await upload(client, issuer, f"user.nobody{uid[:4]}/f", b"x")).status_code == 404
    unknown_rse = await upload(client, issuer, f"user.alice/{uid}", b"x", rse="NO-SUCH-RSE")
    assert unknown_rse.status_code == 422, unknown_rse.text
    assert unknown_rse.json()["errors"][0]["loc"] == ["query", "rse"]
    bad_rse = await upload(client, issuer, f"user.alice/{uid}", b"x", rse="lower-case")
    assert bad_rse.status_code == 422
    assert (await client.get("/rses/NO-SUCH-RSE", headers=h(issuer))).status_code == 404
    assert (await client.get("/dids/user.alice/nothing-here", headers=h(issuer))).status_code == 404
    anonymous = await client.get("/dids/user.alice")
    assert anonymous.status_code == 401
    await upload(client, issuer, f"user.alice/{uid}-r", b"r")
    no_rse = await client.post(
        "/rules",
        json={"dids": [f"user.alice:{uid}-r"], "rse_expression": "NO-SUCH-RSE"},
        headers=h(issuer),
    )
    assert no_rse.status_code == 422, no_rse.text
    assert no_rse.json()["errors"][0]["loc"] == ["rse_expression"]
    foreign_rule = await client.post(
        "/rules",
        json={"dids": ["user.bob:x"], "rse_expression": "VRE-DISK-2"},
        headers=h(issuer),
    )
    assert foreign_rule.status_code == 403


async def test_rses(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    rses = await client.get("/rses", headers=h(issuer))
    assert rses.status_code == 200, rses.text
    names = {r["name"] for r in rses.json()}
    assert {"VRE-DISK-1", "VRE-DISK-2"} <= names
    one = await client.get("/rses/VRE-DISK-1", headers=h(issuer))
    assert one.json()["schemes"] == ["file"]
    assert one.json()["attributes"]["vre_kind"] == "posix"
    assert one.json()["space"][0]["source"] == "rucio"
    posix = await client.get("/rses", params={"expression": "vre_kind=posix"}, headers=h(issuer))
    assert {r["name"] for r in posix.json()} >= {"VRE-DISK-1", "VRE-DISK-2"}


# ---------------------------------------------------------------------------- DIDs


async def test_datasets_metadata_search_content(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    ds = await client.post(
        "/dids/user.alice",
        json={"name": f"{uid}-ds", "type": "dataset", "metadata": {"campaign": "c1"}},
        headers=h(issuer),
    )
    assert ds.status_code == 201, ds.text
    assert ds.json()["type"] == "dataset"
    assert ds.json()["metadata"]["campaign"] == "c1"
    dup = await client.post("/dids/user.alice", json={"name": f"{uid}-ds"}, headers=h(issuer))
    assert dup.status_code == 409

    for run in range(3):
        put = await upload(
            client,
            issuer,
            f"user.alice/{uid}/run{run}.dat",
            f"run {run}".encode(),
            dataset=f"user.alice:{uid}-ds",
            meta=[f"run_number={run}", 'datatype="raw"'],  # type: ignore[arg-type]
        )
        assert put.status_code == 201, put.text
        assert put.json()["dataset"] == f"user.alice:{uid}-ds"
    extra = await upload(client, issuer, f"user.alice/{uid}/other.dat", b"other")
    assert extra.status_code == 201

    one = await client.get(f"/dids/user.alice/{uid}/run2.dat", headers=h(issuer))
    assert one.json()["metadata"]["run_number"] == 2
    assert one.json()["metadata"]["datatype"] == "raw"

    content = await client.get(f"/dids/user.alice/{uid}-ds/content", headers=h(issuer))
    assert content.status_code == 200, content.text
    assert sorted(d["name"] for d in content.json()) == [f"{uid}/run{i}.dat" for i in range(3)]

    async def names(**params: object) -> list[str]:
        response = await client.get("/dids/user.alice", params=params, headers=h(issuer))
        assert response.status_code == 200, response.text
        return sorted(d["name"] for d in response.json()["items"])

    assert await names(name=f"{uid}/run*") == [f"{uid}/run{i}.dat" for i in range(3)]
    assert await names(name=f"{uid}*", type="dataset") == [f"{uid}-ds"]
    assert await names(name=f"{uid}/*", meta="run_number>=1") == [
        f"{uid}/run1.dat",
        f"{uid}/run2.dat",
    ]
    assert await names(name=f"{uid}/*", meta=["run_number!=1", "datatype=raw"]) == [
        f"{uid}/run0.dat",
        f"{uid}/run2.dat",
    ]
    bad_filter = await client.get(
        "/dids/user.alice", params={"meta": "run number=1"}, headers=h(issuer)
    )
    assert bad_filter.status_code == 422
    assert bad_filter.json()["errors"][0]["loc"] == ["query", "meta", 0]

    first = await client.get(
        "/dids/user.alice", params={"name": f"{uid}*", "limit": 2}, headers=h(issuer)
    )
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_offset"] == 2
    rest = await client.get(
        "/dids/user.alice",
        params={"name": f"{uid}*", "limit": 2, "offset": 2, "type": "all"},
        headers=h(issuer),
    )
    assert len(rest.json()["items"]) == 2
    assert rest.json()["next_offset"] == 4
    last = await client.get(
        "/dids/user.alice",
        params={"name": f"{uid}*", "limit": 2, "offset": 4},
        headers=h(issuer),
    )
    assert len(last.json()["items"]) == 1
    assert last.json()["next_offset"] is None
    paged = page["items"] + rest.json()["items"] + last.json()["items"]
    assert len({d["name"] for d in paged}) == 5

    streamed = await client.get(
        "/dids/user.alice",
        params={"name": f"{uid}*"},
        headers={**h(issuer), "Accept": "application/x-ndjson"},
    )
    assert streamed.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    assert len(lines) == 5

    detach = await client.post(
        f"/dids/user.alice/{uid}-ds/detach",
        json={"dids": [f"user.alice:{uid}/run0.dat"]},
        headers=h(issuer),
    )
    assert detach.status_code == 204, detach.text
    attach = await client.post(
        f"/dids/user.alice/{uid}-ds/attach",
        json={"dids": [f"user.alice:{uid}/other.dat"]},
        headers=h(issuer),
    )
    assert attach.status_code == 204, attach.text
    content = await client.get(f"/dids/user.alice/{uid}-ds/content", headers=h(issuer))
    assert sorted(d["name"] for d in content.json()) == [
        f"{uid}/other.dat",
        f"{uid}/run1.dat",
        f"{uid}/run2.dat",
    ]

    container = await client.post(
        "/dids/user.alice", json={"name": f"{uid}-all", "type": "container"}, headers=h(issuer)
    )
    assert container.status_code == 201
    await client.post(
        f"/dids/user.alice/{uid}-all/attach",
        json={"dids": [f"user.alice:{uid}-ds"]},
        headers=h(issuer),
    )
    flat = await client.get(f"/dids/user.alice/{uid}-all/content", headers=h(issuer))
    assert [d["name"] for d in flat.json()] == [f"{uid}-ds"]
    deep = await client.get(
        f"/dids/user.alice/{uid}-all/content", params={"recursive": "true"}, headers=h(issuer)
    )
    assert len(deep.json()) == 4

    meta = await client.post(
        f"/dids/user.alice/{uid}/other.dat/metadata",
        json={"metadata": {"version": "v2", "run_number": 99}},
        headers=h(issuer),
    )
    assert meta.status_code == 200, meta.text
    assert meta.json()["metadata"]["version"] == "v2"
    bulk = await client.post(
        "/metadata",
        json={
            "items": [
                {"did": f"user.alice:{uid}/run1.dat", "metadata": {"campaign": "bulk"}},
                {"did": f"user.alice:{uid}/run2.dat", "metadata": {"campaign": "bulk"}},
            ]
        },
        headers=h(issuer),
    )
    assert bulk.status_code == 204, bulk.text
    assert await names(name=f"{uid}/*", meta="campaign=bulk") == [
        f"{uid}/run1.dat",
        f"{uid}/run2.dat",
    ]
    custom = await upload(
        client, issuer, f"user.alice/{uid}/custom.dat", b"c", meta=["telescope=LST"]
    )  # arbitrary keys: Rucio's JSON plugin (on PostgreSQL)
    assert custom.status_code == 201, custom.text
    stored = await client.get(f"/dids/user.alice/{uid}/custom.dat", headers=h(issuer))
    assert stored.json()["metadata"]["telescope"] == "LST"
    assert await names(name=f"{uid}/*", meta="telescope=LST") == [f"{uid}/custom.dat"]
    forged = await upload(
        client, issuer, f"user.alice/{uid}/forged.dat", b"f", meta=["account=bob"]
    )  # a DID property, not metadata: refused before any byte is stored
    assert forged.status_code == 422, forged.text
    assert forged.json()["errors"][0]["loc"] == ["metadata", "account"]
    missing = await client.get(f"/dids/user.alice/{uid}/forged.dat", headers=h(issuer))
    assert missing.status_code == 404
    bad_key = await client.post(
        f"/dids/user.alice/{uid}/other.dat/metadata",
        json={"metadata": {"bad key": 1}},
        headers=h(issuer),
    )
    assert bad_key.status_code == 422
    foreign = await client.post(
        "/metadata",
        json={"items": [{"did": "user.bob:x", "metadata": {"version": "1"}}]},
        headers=h(issuer),
    )
    assert foreign.status_code == 403

    # the dataset as a tar, every member byte-identical
    archive = await client.get(f"/dids/user.alice/{uid}-ds/archive", headers=h(issuer))
    assert archive.status_code == 200, archive.text
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert members == {
        f"user.alice/{uid}/run1.dat": b"run 1",
        f"user.alice/{uid}/run2.dat": b"run 2",
        f"user.alice/{uid}/other.dat": b"other",
    }

    replicas = await client.get(f"/dids/user.alice/{uid}-ds/replicas", headers=h(issuer))
    assert replicas.status_code == 200
    assert {r["replicas"][0]["rse"] for r in replicas.json()} == {"VRE-DISK-1"}
    assert all(is_file(r["replicas"][0]["path"]) for r in replicas.json())


# ---------------------------------------------------------------------------- rules, usage


async def test_names_rucio_would_read_as_numbers_or_booleans(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    """Rucio's filter engine reads a name filter '0' as the integer 0 (on PostgreSQL: a 502
    'DatabaseException', found by the fuzzer) and rewrites 'true' to 'True' anywhere in it
    (a silent miss). The datalake sends a wider pattern and narrows the listing itself."""
    number = str(int(uid, 16))  # unique to this test, all digits
    names = [number, f"{number}.5", f"{number}0", f"my{uid}true.txt", f"un{uid}TRUE"]
    for name in names:
        put = await upload(client, issuer, f"user.alice/{name}", name.encode())
        assert put.status_code == 201, put.text

    async def found(name: str, **params: object) -> list[str]:
        response = await client.get(
            "/dids/user.alice", params={"name": name, **params}, headers=h(issuer)
        )
        assert response.status_code == 200, response.text
        return sorted(d["name"] for d in response.json()["items"])

    assert await found(number) == [number]
    assert await found(f"{number}.5") == [f"{number}.5"]
    assert await found(f"{number}*") == sorted([number, f"{number}.5", f"{number}0"])
    assert len(await found(f"{number}*", limit=2)) == 2
    assert await found(f"my{uid}true.txt") == [f"my{uid}true.txt"]
    assert await found(f"*{uid}true*") == [f"my{uid}true.txt"]
    assert await found(f"un{uid}TRUE") == [f"un{uid}TRUE"]
    assert await found("None") == []


async def test_rule_replicates_after_daemon_pass_and_usage_changes(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str, rucio_server: LocalRucio
) -> None:
    user = f"rules{uid[:6]}"
    headers = h(issuer, user)
    me = (await client.get("/scopes/mine", headers=headers)).json()
    scope = me["scope"]
    body = b"replicate me " * 5000
    put = await client.put(f"/files/{scope}/{uid}/r.dat", content=body, headers=headers)
    assert put.status_code == 201, put.text
    ds = await client.post(f"/dids/{scope}", json={"name": f"{uid}-ds"}, headers=headers)
    assert ds.status_code == 201
    await client.post(
        f"/dids/{scope}/{uid}-ds/attach", json={"dids": [f"{scope}:{uid}/r.dat"]}, headers=headers
    )

    created = await client.post(
        "/rules",
        json={"dids": [f"{scope}:{uid}-ds"], "rse_expression": "VRE-DISK-2", "comment": "t"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["ids"][0]
    before = await client.get(f"/rules/{rule_id}", headers=headers)
    assert before.json()["state"] == "REPLICATING"
    usage_before = (await client.get("/usage", headers=headers)).json()
    assert {u["rse"]: u["used_bytes"] for u in usage_before["rses"]}["VRE-DISK-2"] == 0

    rucio_server.run_daemons_once()

    after = await client.get(f"/rules/{rule_id}", headers=headers)
    assert after.status_code == 200, after.text
    assert after.json()["state"] == "OK"
    assert after.json()["locked_bytes"] == len(body)
    assert after.json()["locks"][0]["rse"] == "VRE-DISK-2"
    copies = on_disk(rucio_server.rse_prefixes["VRE-DISK-2"], f"{uid}/r.dat")
    assert len(copies) == 1
    assert copies[0].read_bytes() == body

    listed = await client.get("/rules", params={"sort": "bytes"}, headers=headers)
    assert listed.status_code == 200
    assert {r["id"] for r in listed.json()} >= {rule_id}
    assert all(r["locked_bytes"] == len(body) for r in listed.json())

    usage = (await client.get("/usage", headers=headers)).json()
    used = {u["rse"]: u["used_bytes"] for u in usage["rses"]}
    assert used["VRE-DISK-1"] == len(body)
    assert used["VRE-DISK-2"] == len(body)
    assert usage["used_bytes"] == 2 * len(body)

    resolved = await client.post(
        "/resolve",
        json={"dids": [f"{scope}:{uid}-ds"], "rse_expression": "VRE-DISK-2"},
        headers=headers,
    )
    assert resolved.status_code == 200, resolved.text
    [file] = resolved.json()["files"]
    assert file["parent"] == f"{scope}:{uid}-ds"
    assert file["md5"] == hashlib.md5(body).hexdigest()
    assert [r["rse"] for r in file["replicas"]] == ["VRE-DISK-2", "VRE-DISK-1"]
    assert file["replicas"][0]["preferred"] is True
    assert read_bytes(file["replicas"][0]["path"]) == body

    from_second = await client.get(
        f"/files/{scope}/{uid}/r.dat", params={"rse": "VRE-DISK-2"}, headers=headers
    )
    assert from_second.headers["x-replica-rse"] == "VRE-DISK-2"
    assert from_second.content == body

    longer = await client.patch(f"/rules/{rule_id}", json={"lifetime": 3600}, headers=headers)
    assert longer.status_code == 200, longer.text
    assert longer.json()["expires_at"] is not None
    stranger = await client.get(f"/rules/{rule_id}", headers=h(issuer))
    assert stranger.status_code == 404
    assert (await client.delete(f"/rules/{rule_id}", headers=h(issuer))).status_code == 404
    assert (await client.get("/rules/not-a-rule-id", headers=headers)).status_code == 404
    deleted = await client.delete(f"/rules/{rule_id}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    soft = (await client.get(f"/rules/{rule_id}", headers=headers)).json()
    assert soft["expires_at"] is not None  # Rucio's grace period before the rule goes
    gone = await client.delete(f"/rules/{rule_id}", params={"immediately": "true"}, headers=headers)
    assert gone.status_code == 204, gone.text
    rucio_server.run_daemons_once()
    assert (await client.get(f"/rules/{rule_id}", headers=headers)).status_code == 404


async def test_over_quota_is_507_with_numbers(
    client: httpx.AsyncClient, issuer: TestIssuer, uid: str, rucio_server: LocalRucio
) -> None:
    user = f"quota{uid[:6]}"
    headers = h(issuer, user)
    me = (await client.get("/scopes/mine", headers=headers)).json()
    with rucio_server.admin() as admin:
        admin.set_account_limit(me["account"], "VRE-DISK-1", 1000)
    refused = await client.put(
        f"/files/{me['scope']}/{uid}.bin", content=b"x" * 2000, headers=headers
    )
    assert refused.status_code == 507, refused.text
    problem = refused.json()
    assert problem["limit_bytes"] == 1000
    assert problem["requested_bytes"] == 2000
    assert problem["rse"] == "VRE-DISK-1"
    assert (await client.get(f"/dids/{me['scope']}/{uid}.bin", headers=headers)).status_code == 404
    fits = await client.put(f"/files/{me['scope']}/{uid}.ok", content=b"x" * 500, headers=headers)
    assert fits.status_code == 201, fits.text
    with rucio_server.admin() as admin:
        admin.set_account_limit(me["account"], "VRE-DISK-2", 100)
    rule = await client.post(
        "/rules",
        json={"dids": [f"{me['scope']}:{uid}.ok"], "rse_expression": "VRE-DISK-2"},
        headers=headers,
    )
    assert rule.status_code == 507, rule.text
    assert rule.json()["limit_bytes"] == 100
    assert rule.json()["rse"] == "VRE-DISK-2"


@pytest.mark.parametrize("refusal", [507, 403])
async def test_a_rule_refused_after_registration_never_leaves_a_file_without_bytes(
    dl_settings: DatalakeSettings,
    issuer: TestIssuer,
    uid: str,
    rse_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    refusal: int,
) -> None:
    """Rucio registers the replica, then refuses the account's rule (e.g. a concurrent upload
    used the quota up). Rucio lets nobody delete the replica, so the bytes must stay: the
    catalogue may list the file, but never a file whose bytes are gone."""
    from vre_common.errors import ForbiddenError
    from vre_datalake.errors import QuotaError

    app = create_app(dl_settings, validator=issuer.validator())
    async with app_client(app, timeout=60) as client:
        backend = app.state.factory.backend

        async def refuse(*_: object, **__: object) -> None:
            if refusal == 507:
                raise QuotaError("VRE-DISK-1", limit_bytes=1, used_bytes=1, requested_bytes=6)
            raise ForbiddenError("the rule is not allowed on this RSE")

        monkeypatch.setattr(backend, "add_file_rule", refuse)
        headers = h(issuer)
        scope = (await client.get("/scopes/mine", headers=headers)).json()["scope"]
        refused = await client.put(f"/files/{scope}/{uid}.dat", content=b"kept!\n", headers=headers)
        assert refused.status_code == refusal, refused.text
        listed = await client.get(f"/dids/{scope}/{uid}.dat", headers=headers)
        assert listed.status_code == 200, listed.text  # Rucio did register the replica …
        files = on_disk(rse_root, f"{uid}.dat")
        assert [f.read_bytes() for f in files] == [b"kept!\n"]  # … and its bytes are there


# ---------------------------------------------------------------------------- outage, modes


async def test_rucio_outage_is_503_then_recovers(
    client: httpx.AsyncClient, issuer: TestIssuer, rucio_server: LocalRucio
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    with rucio_server.outage():
        down = await client.get("/dids/user.alice", headers=h(issuer))
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "3"
        assert down.headers["content-type"] == PROBLEM
        # Rucio is external: reported down, but the pod stays ready and answers 503 itself
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        rucio = ready.json()["dependencies"][0]
        assert (rucio["name"], rucio["up"], rucio["optional"]) == ("rucio", False, True)
        assert rucio["reason"]
        upload_down = await upload(client, issuer, "user.alice/during-outage.bin", b"x")
        assert upload_down.status_code == 503
    back = await client.get("/dids/user.alice", headers=h(issuer))
    assert back.status_code == 200, back.text
    assert (await client.get("/readyz")).status_code == 200


async def test_token_mode_forwards_the_users_token(
    dl_settings: DatalakeSettings, issuer: TestIssuer
) -> None:
    # This Rucio has no [oidc] section, so it must refuse the forwarded IAM token: the
    # answer is a 401 problem saying Rucio did not accept it (nothing falls back to the
    # service's own credential).
    settings = dl_settings.model_copy(
        update={"rucio": dl_settings.rucio.model_copy(update={"identity_mode": "token"})}
    )
    app = create_app(settings, validator=issuer.validator())
    async with app_client(app) as http:
        response = await http.get("/scopes/mine", headers=h(issuer))
    assert response.status_code == 401, response.text
    assert "Rucio did not accept the token" in response.json()["detail"]
