"""A deposition of a run carries the run's record (issue 21): the zenodo app, the REAL
datalake service on the real Rucio fixture, the Zenodo stand-in and the workflows fake."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import pytest

from services.zenodo.tests.conftest import AppClient
from services.zenodo.tests.support.fakes import VreServicesFake
from services.zenodo.tests.support.standin import ZenodoStandIn
from services.zenodo.tests.test_zenodo_e2e import (
    SCOPE,
    _register,
    checksums,
    put_files,
    wait_for,
)
from vre_common.clients.datalake import DatalakeClient
from vre_common.run_record import RunRecord
from vre_common.testing import TestIssuer


@pytest.fixture
async def lake(datalake_url: str, issuer: TestIssuer) -> AsyncIterator[DatalakeClient]:
    """The datalake service as alice (an independent client of what the app did)."""
    async with DatalakeClient(datalake_url, issuer.token("alice")) as client:
        yield client


META = {
    "upload_type": "dataset",
    "title": "Run outputs",
    "description": "Outputs of a run.",
    "creators": [{"name": "Doe, Jane"}],
    "notes": "Made on a Tuesday.",
}


async def test_run_deposition_publishes_its_record(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    vre_fakes: tuple[VreServicesFake, str, str],
    datalake_url: str,
    lake: DatalakeClient,
    issuer: TestIssuer,
    uid: str,
) -> None:
    fakes, _, _ = vre_fakes
    data = b"42\n"
    # an output that would take the record's name in the bucket keeps its full name instead
    await put_files(lake, {f"{uid}-run/total.txt": data, f"{uid}-run/vre-run-record.json": b"{}"})
    md5, adler = checksums(data)
    run_id = f"run-{uid}"
    fakes.runs[run_id] = {
        "id": run_id,
        "status": "finished",
        "spec_sha256": "ab" * 32,
        "parameters": {"factor": 2},
        "inputs": [{"path": "numbers.csv", "did": f"{SCOPE}:numbers-{uid}.csv", "kind": "did",
                    "bytes": 6, "adler32": "0a", "md5": "0b"}],
        "outputs": [
            {"path": "total.txt", "bytes": 3, "md5": md5, "adler32": adler,
             "did": f"{SCOPE}:{uid}-run/total.txt"},
            {"path": "vre-run-record.json", "bytes": 2, "md5": checksums(b"{}")[0],
             "did": f"{SCOPE}:{uid}-run/vre-run-record.json"},
        ],
    }  # fmt: skip
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await _register(client, alice)
        created = await client.post("/depositions", json={"run_id": run_id, "metadata": META},
                                    headers=alice)  # fmt: skip
        assert created.status_code == 202, created.text
        dep = await wait_for(client, created.headers["Location"], alice, {"ready", "incomplete"})
        assert dep["state"] == "ready", dep
        published = await client.post(f"{created.headers['Location']}/publish", headers=alice)
        assert published.status_code == 200, published.text
        doi = published.json()["doi"]
        assert doi

        record = fresh_standin.records[dep["zenodo_id"]]
        files = {f.key: f for f in record.files}
        assert set(files) == {
            "total.txt",
            "vre-run-record.json",
            f"{SCOPE}_{uid}-run_vre-run-record.json",
        }
        stored = files["vre-run-record.json"].path.read_bytes()
        assert files["vre-run-record.json"].md5 == hashlib.md5(stored).hexdigest()
        published_record = RunRecord.model_validate(json.loads(stored))
        assert published_record.run_id == run_id
        assert published_record.spec_sha256 == "ab" * 32
        assert published_record.parameters == {"factor": 2}
        assert published_record.inputs[0].did == f"{SCOPE}:numbers-{uid}.csv"
        outputs = {o.path: o for o in published_record.outputs}
        assert (outputs["total.txt"].md5, outputs["total.txt"].adler32) == (md5, adler)
        notes = record.metadata["notes"].splitlines()
        assert notes[0] == "Made on a Tuesday."
        assert notes[1].startswith("Run record: vre-run-record.json")
        assert "ab" * 32 in notes[1]

        # the record lives in the Data Lake beside the outputs, with the bytes published
        (in_lake,) = [f for f in dep["files"] if f["filename"] == "vre-run-record.json"]
        scope, _, name = in_lake["did"].partition(":")
        assert scope == SCOPE
        assert name.startswith(f"{uid}-run/vre-run-record-")  # the output holds the plain name
        async with lake.download(scope, name) as download:
            assert b"".join([c async for c in download.iter_bytes()]) == stored

        # publishing the run again reuses the record already in the Data Lake
        again = await client.post("/depositions", json={"run_id": run_id, "metadata": META},
                                  headers=alice)  # fmt: skip
        assert again.status_code == 202, again.text
        (second,) = [f for f in again.json()["files"] if f["filename"] == "vre-run-record.json"]
        assert second["did"] == in_lake["did"]
        await wait_for(client, again.headers["Location"], alice, {"ready", "incomplete"})
