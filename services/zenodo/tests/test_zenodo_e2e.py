"""Import and publish end to end: the zenodo app, the REAL datalake service on a real Rucio
(SQLite fixture; PostgreSQL for custom metadata keys), and the Zenodo stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.datalake.tests.datalake_support import run_rucio_client
from services.zenodo.tests.conftest import ALICE_TOKEN, DEFAULT_RSE, AppClient
from services.zenodo.tests.support.fakes import VreServicesFake
from services.zenodo.tests.support.standin import ZenodoStandIn
from vre_common.clients.datalake import DatalakeClient
from vre_common.errors import NotFoundError
from vre_common.testing import TestIssuer

SCOPE = "user.alice"
META = {
    "upload_type": "dataset",
    "title": "E2E publication",
    "description": "Files published by the end-to-end test.",
    "creators": [{"name": "Doe, Jane", "affiliation": "INFN"}],
    "license": "cc-by-4.0",
}


@pytest.fixture
async def lake(datalake_url: str, issuer: TestIssuer) -> AsyncIterator[DatalakeClient]:
    """The datalake service as alice (an independent client of what the app did)."""
    token = issuer.token("alice")
    async with DatalakeClient(datalake_url, token) as client:
        yield client


async def wait_for(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    states: set[str],
    within: float = 60,
) -> dict[str, Any]:
    """Poll ``path`` until its ``state`` is one of ``states``."""
    deadline = time.monotonic() + within
    while True:
        answer = await client.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["state"] in states:
            return body
        assert time.monotonic() < deadline, f"still {body['state']}: {body}"
        await asyncio.sleep(0.05)


def checksums(data: bytes) -> tuple[str, str]:
    """(md5, adler32) as Rucio records them."""
    return hashlib.md5(data).hexdigest(), f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


async def put_files(lake: DatalakeClient, files: dict[str, bytes]) -> None:
    """Upload files into alice's scope through the datalake service."""
    for name, data in files.items():
        await lake.upload(SCOPE, name, data)


# ----------------------------------------------------------------------------- import


async def test_import_registers_files_checksums_dataset_and_metadata(
    zenodo_app: AppClient,
    standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    events = os.urandom(3 * 1024 * 1024 + 17)
    readme = f"record {uid}\n".encode()
    rid = standin.add_record(
        {"events run 1.fits": events, "README.md": readme},
        title=f"Events {uid}",
        version="2.1",
        license="cc-by-4.0",
    )
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        started = await client.post(
            "/imports", json={"doi": f"https://doi.org/10.5281/zenodo.{rid}", "scope": SCOPE},
            headers=alice,
        )  # fmt: skip
        assert started.status_code == 202, started.text
        assert started.headers["Location"] == f"/imports/{started.json()['id']}"
        assert started.json()["record_id"] == rid
        job = await wait_for(client, started.headers["Location"], alice, {"completed", "failed"})
        assert job["state"] == "completed", job
        assert job["bytes_done"] == job["total_bytes"] == len(events) + len(readme)
        assert job["dataset"] == f"{SCOPE}:zenodo-{rid}"
        by_key = {f["key"]: f for f in job["files"]}
        assert by_key["events run 1.fits"]["did"] == f"{SCOPE}:zenodo-{rid}/events_run_1.fits"
        assert all(f["state"] == "done" and f["bytes_done"] == f["bytes"] for f in job["files"])

        for key, data in (("events run 1.fits", events), ("README.md", readme)):
            did = by_key[key]["did"].partition(":")[2]
            registered = await lake.get_did(SCOPE, did)
            assert (registered.md5, registered.adler32) == checksums(data)
            assert registered.bytes == len(data)
        async with lake.download(SCOPE, f"zenodo-{rid}/events_run_1.fits") as download:
            copy = b"".join([c async for c in download.iter_bytes()])
        assert copy == events
        content = {d.name async for d in lake.list_content(SCOPE, f"zenodo-{rid}")}
        assert content == {f"zenodo-{rid}/events_run_1.fits", f"zenodo-{rid}/README.md"}
        dataset = await lake.get_did(SCOPE, f"zenodo-{rid}")
        assert dataset.type == "dataset"
        assert dataset.metadata.get("version") == "2.1"  # a DID column: works on every Rucio
        # doi/title/license are custom keys: Rucio on SQLite refuses them, reported as warnings
        refused = {w.split("'")[1] for w in job["warnings"]}
        assert refused <= {"doi", "title", "license"}

        again = await client.post(
            "/imports", json={"record_id": rid, "scope": SCOPE}, headers=alice
        )
        second = await wait_for(client, again.headers["Location"], alice, {"completed", "failed"})
        assert second["state"] == "completed"
        assert {f["state"] for f in second["files"]} == {"exists"}
        listing = await client.get("/imports", headers=alice)
        assert [j["id"] for j in listing.json()["items"]][:2] == [second["id"], job["id"]]
        other = await client.get(started.headers["Location"], headers=issuer.headers("bob"))
        assert other.status_code == 404


async def test_import_md5_mismatch_registers_nothing(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    good, bad = os.urandom(200_000), os.urandom(500_000)
    rid = fresh_standin.add_record({"good.bin": good, "bad.bin": bad}, title=f"Mixed {uid}")
    fresh_standin.corrupt(rid, "bad.bin")
    only_bad = fresh_standin.add_record({"bad.bin": bad}, title=f"Bad {uid}")
    fresh_standin.corrupt(only_bad, "bad.bin")
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        started = await client.post(
            "/imports", json={"record_id": rid, "scope": SCOPE}, headers=alice
        )
        job = await wait_for(client, started.headers["Location"], alice, {"completed", "failed"})
        assert job["state"] == "failed"
        files = {f["key"]: f for f in job["files"]}
        assert files["good.bin"]["state"] == "done"
        assert files["bad.bin"]["state"] == "failed"
        assert "md5" in files["bad.bin"]["error"]
        assert job["error"]["title"] == "Import incomplete"
        with pytest.raises(NotFoundError):
            await lake.get_did(SCOPE, f"zenodo-{rid}/bad.bin")
        assert (await lake.get_did(SCOPE, f"zenodo-{rid}/good.bin")).md5 == checksums(good)[0]

        started = await client.post(
            "/imports", json={"record_id": only_bad, "scope": SCOPE}, headers=alice
        )
        job = await wait_for(client, started.headers["Location"], alice, {"completed", "failed"})
        assert job["state"] == "failed"
        for name in (f"zenodo-{only_bad}/bad.bin", f"zenodo-{only_bad}"):
            with pytest.raises(NotFoundError):
                await lake.get_did(SCOPE, name)


async def test_import_unknown_record_and_scope(
    zenodo_app: AppClient, datalake_url: str, issuer: TestIssuer, standin: ZenodoStandIn
) -> None:
    async with zenodo_app(datalake_url) as client:
        missing = await client.post(
            "/imports", json={"record_id": 424242, "scope": SCOPE}, headers=issuer.headers()
        )
        assert missing.status_code == 404
        assert missing.json()["type"].endswith("/record-not-found")
        by_doi = await client.post(
            "/imports", json={"doi": "10.1234/not-zenodo", "scope": SCOPE}, headers=issuer.headers()
        )
        assert by_doi.status_code == 404
        rid = standin.add_record({"x.txt": b"x"})
        foreign = await client.post(
            "/imports", json={"record_id": rid, "scope": "user.bob"}, headers=issuer.headers()
        )
        job = await wait_for(
            client, foreign.headers["Location"], issuer.headers(), {"failed", "completed"}
        )
        assert job["state"] == "failed"
        assert job["error"]["status"] in (403, 404)


# ----------------------------------------------------------------------------- publish


async def _register(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    answer = await client.put("/credentials", json={"token": ALICE_TOKEN}, headers=headers)
    assert answer.status_code == 200, answer.text


async def test_publish_streams_files_and_returns_doi(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    files = {f"{uid}/out/plot.png": os.urandom(2_500_000), f"{uid}/out/table.csv": b"a,b\n1,2\n"}
    await put_files(lake, files)
    await lake.create_dataset(SCOPE, f"{uid}-results")
    await lake.attach(SCOPE, f"{uid}-results", [f"{SCOPE}:{n}" for n in files])
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        created = await client.post(
            "/depositions",
            json={"dids": [f"{SCOPE}:{uid}-results"], "metadata": {**META, "title": f"R {uid}"}},
            headers=alice,
        )
        assert created.status_code == 202, created.text
        location = created.headers["Location"]
        dep = await wait_for(client, location, alice, {"ready", "incomplete"})
        assert dep["state"] == "ready", dep
        assert {f["filename"] for f in dep["files"]} == {"plot.png", "table.csv"}
        bucket = fresh_standin.bucket_of(dep["zenodo_id"])
        for name, data in files.items():
            assert bucket[name.rsplit("/", 1)[1]].md5 == checksums(data)[0]
        assert dep["doi"] is None
        assert dep["zenodo_id"] not in fresh_standin.records

        published = await client.post(f"{location}/publish", headers=alice)
        assert published.status_code == 200, published.text
        body = published.json()
        assert body["state"] == "published"
        assert body["doi"] == f"10.5281/zenodo.{dep['zenodo_id']}"
        assert body["html_url"] == f"{fresh_standin.base_url}/records/{dep['zenodo_id']}"
        record = fresh_standin.records[dep["zenodo_id"]]
        assert {f.key for f in record.files} == {"plot.png", "table.csv"}
        listing = await client.get("/depositions", headers=alice)
        assert listing.json()["items"][0]["id"] == body["id"]
        # DOI write-back: written where Rucio takes custom keys (the metadata plugin), else
        # reported as a warning, never lost
        written = [f["doi_written"] for f in body["files"]]
        if all(written):
            assert body["warnings"] == []
        else:
            assert not any(written)
            assert any("doi" in w for w in body["warnings"])
        refused = await client.delete(location, headers=alice)
        assert refused.status_code == 409


@pytest.mark.postgres
async def test_publish_writes_doi_into_did_metadata_on_postgres_rucio(
    zenodo_app: AppClient,
    standin: ZenodoStandIn,
    datalake_pg_url: str,
    issuer: TestIssuer,
    uid: str,
) -> None:
    alice = issuer.headers("alice")
    async with DatalakeClient(datalake_pg_url, issuer.token("alice")) as lake:
        data = os.urandom(100_000)
        await lake.upload(SCOPE, f"{uid}/result.bin", data)
        async with zenodo_app(datalake_pg_url) as client:
            await _register(client, alice)
            created = await client.post(
                "/depositions", json={"dids": [f"{SCOPE}:{uid}/result.bin"], "metadata": META},
                headers=alice,
            )  # fmt: skip
            dep = await wait_for(
                client, created.headers["Location"], alice, {"ready", "incomplete"}
            )
            assert dep["state"] == "ready", dep
            published = (
                await client.post(f"{created.headers['Location']}/publish", headers=alice)
            ).json()
            assert published["files"][0]["doi_written"] is True, published
            assert published["warnings"] == []
            did = await lake.get_did(SCOPE, f"{uid}/result.bin")
            assert did.metadata["doi"] == published["doi"]

            rid = standin.add_record({"a.txt": b"alpha"}, title=f"PG import {uid}", version="3")
            started = await client.post(
                "/imports", json={"record_id": rid, "scope": SCOPE}, headers=alice
            )
            job = await wait_for(
                client, started.headers["Location"], alice, {"completed", "failed"}
            )
            assert job["state"] == "completed", job
            assert job["warnings"] == [], job
            dataset = await lake.get_did(SCOPE, f"zenodo-{rid}")
            assert dataset.metadata["doi"] == f"10.5281/zenodo.{rid}"
            assert dataset.metadata["title"] == f"PG import {uid}"
            assert dataset.metadata["license"] == "cc-by-4.0"
            assert dataset.metadata["version"] == "3"


async def test_failed_upload_half_way_then_retry(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    files = {f"{uid}/a.bin": os.urandom(300_000), f"{uid}/b.bin": os.urandom(1_000_000),
             f"{uid}/c.bin": os.urandom(300_000)}  # fmt: skip
    await put_files(lake, files)
    alice = issuer.headers("alice")
    fresh_standin.fail_put("b.bin")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        created = await client.post(
            "/depositions", json={"dids": [f"{SCOPE}:{n}" for n in files], "metadata": META},
            headers=alice,
        )  # fmt: skip
        location = created.headers["Location"]
        dep = await wait_for(client, location, alice, {"ready", "incomplete"})
        assert dep["state"] == "incomplete"
        states = {f["filename"]: f["state"] for f in dep["files"]}
        assert states.pop("b.bin") == "failed"
        assert set(states.values()) <= {"uploaded", "pending"}  # before / after the failure
        assert dep["error"]["status"] == 502
        assert "b.bin" not in fresh_standin.bucket_of(dep["zenodo_id"])

        refused = await client.post(f"{location}/publish", headers=alice)
        assert refused.status_code == 409
        assert "/upload" in refused.json()["detail"]
        assert dep["zenodo_id"] not in fresh_standin.records
        assert (await lake.get_did(SCOPE, f"{uid}/a.bin")).metadata.get("doi") is None

        retried = await client.post(f"{location}/upload", headers=alice)
        assert retried.status_code == 202, retried.text
        dep = await wait_for(client, location, alice, {"ready", "incomplete"})
        assert dep["state"] == "ready", dep
        assert dict(fresh_standin.put_counts) == {"a.bin": 1, "b.bin": 2, "c.bin": 1}
        published = await client.post(f"{location}/publish", headers=alice)
        assert published.status_code == 200
        assert published.json()["doi"]


async def test_more_than_100_files_is_refused(
    zenodo_app: AppClient,
    rucio_client_config: Path,
    standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    await lake.upload(SCOPE, f"{uid}/first.txt", b"data")  # alice's scope exists from here
    # 101 files registered in one go by the official rucio-clients (uploading them one by one
    # through the datalake takes ~20 s on Rucio's SQLite)
    names = [f"{uid}/many/f{i:03}.txt" for i in range(101)]
    md5, adler32 = checksums(b"data")
    await asyncio.to_thread(
        run_rucio_client,
        rucio_client_config,
        """
        from rucio.client import Client
        client = Client()
        files = [{"scope": params["scope"], "name": n, "bytes": 4, "md5": params["md5"],
                  "adler32": params["adler32"]} for n in params["names"]]
        client.add_replicas(rse=params["rse"], files=files)
        client.add_dataset(params["scope"], params["dataset"])
        client.attach_dids(params["scope"], params["dataset"],
                           [{"scope": params["scope"], "name": n} for n in params["names"]])
        print(json.dumps(len(files)))
        """,
        scope=SCOPE, names=names, md5=md5, adler32=adler32, rse=DEFAULT_RSE,
        dataset=f"{uid}-many",
    )  # fmt: skip
    assert len([d async for d in lake.list_content(SCOPE, f"{uid}-many")]) == 101
    before = len(standin.depositions)
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        refused = await client.post(
            "/depositions", json={"dids": [f"{SCOPE}:{uid}-many"], "metadata": META}, headers=alice
        )
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["type"].endswith("/too-many-files")
        assert "101 files" in problem["detail"]
        assert "at most 100" in problem["detail"]
        assert len(standin.depositions) == before  # nothing created at Zenodo
        assert (await client.get("/depositions", headers=alice)).json()["items"] == []


async def test_publish_run_outputs_with_catalogue_metadata(
    zenodo_app: AppClient,
    standin: ZenodoStandIn,
    vre_fakes: tuple[VreServicesFake, str, str],
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    fakes, _, _ = vre_fakes
    await put_files(lake, {f"{uid}/run/out.txt": b"result\n"})
    fakes.runs[f"run-{uid}"] = {
        "id": f"run-{uid}",
        "status": "finished",
        "outputs": [
            {"path": "out.txt", "bytes": 7, "md5": checksums(b"result\n")[0],
             "did": f"{SCOPE}:{uid}/run/out.txt"},
            {"path": "not-registered.log", "bytes": 1, "md5": "x", "did": None},
        ],
    }  # fmt: skip
    fakes.software[f"tool-{uid}"] = {
        "upload_type": "software",
        "title": f"Tool {uid}",
        "description": "From the catalogue.",
        "version": "1.0",
        "creators": [{"name": "Carberry, Josiah", "orcid": "0000-0002-1825-0097"}],
        "license": "mit",
        "communities": [{"identifier": "escape2020"}],
    }
    token = issuer.token("alice")
    alice = {"Authorization": f"Bearer {token}"}
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        fakes.seen_tokens.clear()
        created = await client.post(
            "/depositions",
            json={"run_id": f"run-{uid}", "software_id": f"tool-{uid}",
                  "metadata": {"version": "2.0"}},
            headers=alice,
        )  # fmt: skip
        assert created.status_code == 202, created.text
        # the caller's token went to both services (workflows: the run and its record)
        assert fakes.seen_tokens == [token, token, token]
        dep = created.json()
        assert dep["metadata"]["title"] == f"Tool {uid}"
        assert dep["metadata"]["version"] == "2.0"
        assert dep["run_id"] == f"run-{uid}"
        assert dep["sources"] == [f"{SCOPE}:{uid}/run/out.txt"]
        dep = await wait_for(client, created.headers["Location"], alice, {"ready", "incomplete"})
        published = await client.post(f"{created.headers['Location']}/publish", headers=alice)
        assert published.status_code == 200, published.text
        record = standin.records[dep["zenodo_id"]]
        assert record.metadata["upload_type"] == "software"
        assert record.communities == []  # a community request awaits its curator
        assert standin.pending_communities[dep["zenodo_id"]] == ["escape2020"]

        unknown_run = await client.post("/depositions", json={"run_id": "nope"}, headers=alice)
        assert unknown_run.status_code == 404
        assert unknown_run.json()["type"].endswith("/run-not-found")
        unknown_sw = await client.post(
            "/depositions", json={"dids": [f"{SCOPE}:{uid}/run/out.txt"], "software_id": "nope"},
            headers=alice,
        )  # fmt: skip
        assert unknown_sw.status_code == 404


async def test_validation_error_on_publish_then_fixed(
    zenodo_app: AppClient,
    standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    await put_files(lake, {f"{uid}/v.txt": b"v"})
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        created = await client.post(
            "/depositions",
            json={"dids": [f"{SCOPE}:{uid}/v.txt"], "metadata": {"title": "Only a title"}},
            headers=alice,
        )
        location = created.headers["Location"]
        await wait_for(client, location, alice, {"ready"})
        refused = await client.post(f"{location}/publish", headers=alice)
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["type"].endswith("/zenodo-validation")
        assert {tuple(e["loc"]) for e in problem["errors"]} == {
            ("metadata", "upload_type"), ("metadata", "description"), ("metadata", "creators"),
        }  # fmt: skip
        assert (await client.get(location, headers=alice)).json()["state"] == "ready"
        fixed = await client.put(f"{location}/metadata", json={"metadata": META}, headers=alice)
        assert fixed.status_code == 200, fixed.text
        published = await client.post(f"{location}/publish", headers=alice)
        assert published.status_code == 200
        # change a published record's metadata: edit → update → publish
        renamed = await client.put(
            f"{location}/metadata", json={"metadata": {"title": "Renamed"}}, headers=alice
        )
        assert renamed.status_code == 200, renamed.text
        assert standin.records[published.json()["zenodo_id"]].metadata["title"] == "Renamed"
        bad = await client.put(
            f"{location}/metadata", json={"metadata": {"creators": []}}, headers=alice
        )
        assert bad.status_code == 422
        zenodo_id = published.json()["zenodo_id"]
        assert standin.depositions[zenodo_id].state == "done"  # the failed edit was discarded
        assert standin.records[zenodo_id].metadata["title"] == "Renamed"


@pytest.mark.parametrize("shape", ["new", "old"])
async def test_new_versions(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
    shape: str,
) -> None:
    fresh_standin.newversion_shape = shape  # type: ignore[assignment]
    await put_files(lake, {f"{uid}/v1.txt": b"one", f"{uid}/v2.txt": b"two"})
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        created = await client.post(
            "/depositions", json={"dids": [f"{SCOPE}:{uid}/v1.txt"], "metadata": META},
            headers=alice,
        )  # fmt: skip
        first_location = created.headers["Location"]
        await wait_for(client, first_location, alice, {"ready"})
        first = (await client.post(f"{first_location}/publish", headers=alice)).json()

        fresh_standin.put_counts.clear()
        same_files = await client.post(
            f"{first_location}/versions", json={"metadata": {"version": "2"}}, headers=alice
        )
        assert same_files.status_code == 202, same_files.text
        draft = await wait_for(
            client, same_files.headers["Location"], alice, {"ready", "incomplete"}
        )
        assert draft["state"] == "ready"
        assert draft["previous_id"] == first["id"]
        assert fresh_standin.put_counts == {}  # the previous files came with the draft
        second = (
            await client.post(f"{same_files.headers['Location']}/publish", headers=alice)
        ).json()
        assert second["doi"] != first["doi"]
        assert second["metadata"]["version"] == "2"
        assert (
            fresh_standin.records[second["zenodo_id"]].conceptrecid
            == fresh_standin.records[first["zenodo_id"]].conceptrecid
        )

        replaced = await client.post(
            f"{same_files.headers['Location']}/versions",
            json={"dids": [f"{SCOPE}:{uid}/v2.txt"], "metadata": {"version": "3"}},
            headers=alice,
        )
        assert replaced.status_code == 202, replaced.text
        third = await wait_for(client, replaced.headers["Location"], alice, {"ready", "incomplete"})
        assert third["state"] == "ready", third
        assert set(fresh_standin.bucket_of(third["zenodo_id"])) == {"v2.txt"}
        unpublished = await client.post(
            f"{replaced.headers['Location']}/versions", json={}, headers=alice
        )
        assert unpublished.status_code == 409
        discarded = await client.delete(replaced.headers["Location"], headers=alice)
        assert discarded.status_code == 204
        assert third["zenodo_id"] not in fresh_standin.depositions
        gone = (await client.get(replaced.headers["Location"], headers=alice)).json()
        assert gone["state"] == "discarded"


async def test_discard_a_draft(
    zenodo_app: AppClient,
    standin: ZenodoStandIn,
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    await put_files(lake, {f"{uid}/d.txt": b"d"})
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        created = await client.post(
            "/depositions", json={"dids": [f"{SCOPE}:{uid}/d.txt"], "metadata": META},
            headers=alice,
        )  # fmt: skip
        location = created.headers["Location"]
        dep = await wait_for(client, location, alice, {"ready"})
        assert dep["zenodo_id"] in standin.depositions
        by_bob = await client.delete(location, headers=issuer.headers("bob"))
        assert by_bob.status_code == 404
        assert (await client.delete(location, headers=alice)).status_code == 204
        assert dep["zenodo_id"] not in standin.depositions
        assert (await client.delete(location, headers=alice)).status_code == 204
        publish = await client.post(f"{location}/publish", headers=alice)
        assert publish.status_code == 409
        zenodo_side = await client.get("/depositions/zenodo", headers=alice)
        assert dep["zenodo_id"] not in {d["zenodo_id"] for d in zenodo_side.json()["items"]}
