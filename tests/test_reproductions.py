"""Reproduce a published result from its DOI alone (issue 21), on the whole VRE: the gateway
with the services mounted as in the embedded mode, a real Rucio, the local executor and the
Zenodo stand-in.

alice runs a two-step workflow in her own scope (no project: its provenance is hers) and
publishes it with its input; carol, in a project of her own, reproduces it from the DOI:
identical → ``reproduced``; a step adding noise below the tolerance → ``within tolerance``;
noise above it → ``differs`` naming the file and the column. A record whose input changed in
the Data Lake stops before running; a record without a run record is a 422.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from services.zenodo.tests.support.standin import ZenodoStandIn
from tests.test_e2e_chain import (  # noqa: F401 (module fixtures used by name)
    META,
    ZENODO_TOKENS,
    _poll,
    gateway_url,
    zenodo_standin,
)
from vre_common.run_record import canonical_sha256
from vre_common.testing import TestIssuer

pytestmark = pytest.mark.slow

# The second step writes a table; with noise > 0 each run draws other values.
TABLE_PY = """\
import random
import sys

noise = float(sys.argv[1])
rows = [int(line) for line in open("sorted.txt") if line.strip()]
with open("table.csv", "w") as out:
    out.write("x,y,label\\n")
    for x in rows:
        y = x * 2.5 * (1 + noise * (random.random() - 0.5))
        out.write(f"{x},{y!r},n{x}\\n")
"""

SPEC = {
    "version": "0.9.4",
    "inputs": {"parameters": {"noise": 0}},
    "workflow": {
        "type": "serial",
        "specification": {
            "steps": [
                {"name": "sort", "environment": "docker.io/library/python:3.11-slim",
                 "commands": ["sort -n numbers.txt > sorted.txt"]},
                {"name": "table", "environment": "docker.io/library/python:3.11-slim",
                 "commands": ["python3 code/table.py ${noise}"]},
            ]
        },
    },
    "outputs": {"files": ["sorted.txt", "table.csv"]},
}  # fmt: skip


async def _publish_run(
    http: httpx.AsyncClient, alice: dict[str, str], input_did: str, noise: float
) -> tuple[str, str]:
    """alice's personal run of the workflow, published with its input: (run id, DOI)."""
    submitted = await http.post(
        "/workflows/runs",
        json={"spec": SPEC, "parameters": {"noise": noise}, "inputs": [{"did": input_did}],
              "files": {"code/table.py": TABLE_PY}, "name": "table"},
        headers=alice,
    )  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    run_id = submitted.json()["id"]
    run = await _poll(
        http, f"/workflows/runs/{run_id}", alice, lambda b: b["status"] not in ("queued", "running")
    )
    assert run["status"] == "finished", run.get("error")
    created = await http.post(
        "/zenodo/depositions",
        json={"run_id": run_id, "dids": [input_did], "metadata": META},
        headers=alice,
    )
    assert created.status_code == 202, created.text
    deposition = created.json()["id"]
    ready = await _poll(
        http, f"/zenodo/depositions/{deposition}", alice,
        lambda b: b["state"] in ("ready", "incomplete"),
    )  # fmt: skip
    assert ready["state"] == "ready", ready
    published = await http.post(f"/zenodo/depositions/{deposition}/publish", headers=alice)
    assert published.status_code == 200, published.text
    return run_id, str(published.json()["doi"])


async def _reproduce(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    started = await http.post("/zenodo/reproductions", json=body, headers=headers)
    assert started.status_code == 202, started.text
    assert started.headers["Location"].endswith(f"/reproductions/{started.json()['id']}")
    return await _poll(
        http, f"/zenodo/reproductions/{started.json()['id']}", headers,
        lambda b: b["state"] not in ("queued", "checking", "running", "comparing"),
        within=180,
    )  # fmt: skip


async def test_reproduce_from_the_doi_alone(
    gateway_url: tuple[str, TestIssuer],  # noqa: F811
    zenodo_standin: ZenodoStandIn,  # noqa: F811
) -> None:
    url, issuer = gateway_url
    alice, carol = issuer.headers("alice"), issuer.headers("carol")
    uid = uuid.uuid4().hex[:8]
    slug = f"repro-{uid}"
    input_did = f"user.alice:repro-{uid}/numbers.txt"
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for user, headers in (("alice", alice), ("carol", carol)):
            token = next(t for t, u in ZENODO_TOKENS.items() if u == user)
            registered = await http.put("/zenodo/credentials", json={"token": token},
                                        headers=headers)  # fmt: skip
            assert registered.status_code == 200, registered.text
        made = await http.post("/projects", json={"name": "Reproductions", "slug": slug},
                               headers=carol)  # fmt: skip
        assert made.status_code == 201, made.text
        up = await http.put(
            f"/datalake/files/user.alice/repro-{uid}/numbers.txt", content=b"3\n1\n2\n",
            headers=alice,
        )  # fmt: skip
        assert up.status_code in (200, 201), up.text

        # --- deterministic: carol (another user, her project) reproduces it exactly
        run_id, doi = await _publish_run(http, alice, input_did, 0)
        same = await _reproduce(http, carol, {"doi": doi, "project": slug})
        assert same["verdict"] == "reproduced", same
        assert same["original_run_id"] == run_id
        (checked,) = [i for i in same["inputs"] if i["path"] == "numbers.txt"]
        # carol may not read alice's scope: the input comes from the record's own file
        assert checked["source"] == "record", checked
        assert checked["used"].startswith(f"proj.{slug}:")
        assert {f["path"]: f["outcome"] for f in same["files"]} == {
            "sorted.txt": "identical", "table.csv": "identical",
        }  # fmt: skip
        rerun = await http.get(f"/workflows/runs/{same['run_id']}", headers=carol)
        assert rerun.status_code == 200, rerun.text
        assert rerun.json()["project"] == slug
        logs = await http.get(f"/zenodo/reproductions/{same['id']}/logs", headers=carol)
        assert "verdict: reproduced" in logs.text
        hidden = await http.get(f"/zenodo/reproductions/{same['id']}", headers=alice)
        assert hidden.status_code == 404
        # alice reproduces her own: the input is read by its DID, its checksums unchanged
        own = await _reproduce(http, alice, {"doi": doi})
        assert own["verdict"] == "reproduced", own
        assert {i["path"]: i["source"] for i in own["inputs"]}["numbers.txt"] == "data lake"

        # --- provenance: the reproduction used the DOI and generated the re-run's outputs;
        # alice's personal chain walks back from the DOI to her upload
        entity = f"doi:{doi.lower()}"
        down = await _poll(
            http, "/provenance", carol,
            lambda g: f"reproduction:{same['id']}" in {n["id"] for n in g["nodes"]},
            params={"entity": entity, "direction": "down", "depth": 2}, within=30,
            not_yet=404,  # until the relays have delivered the events
        )  # fmt: skip
        edges = {(e["source"], e["target"], e["relation"]) for e in down["edges"]}
        assert (f"reproduction:{same['id']}", entity, "used") in edges
        assert any(
            s.startswith(f"did:proj.{slug}:") and t == f"reproduction:{same['id']}"
            for s, t, r in edges if r == "wasGeneratedBy"
        )  # fmt: skip
        up_graph = await _poll(
            http, "/provenance", alice,
            lambda g: f"did:{input_did}" in {n["id"] for n in g["nodes"]},
            params={"entity": entity, "direction": "up", "depth": 5}, within=30, not_yet=404,
        )  # fmt: skip
        assert f"run:{run_id}" in {n["id"] for n in up_graph["nodes"]}

        # --- noise below the tolerance: within tolerance, the column and its difference
        _, doi_noisy = await _publish_run(http, alice, input_did, 1e-9)
        near = await _reproduce(http, carol, {"doi": doi_noisy, "project": slug})
        assert near["verdict"] == "reproduced within tolerance", near
        table = {f["path"]: f for f in near["files"]}["table.csv"]
        assert table["outcome"] == "within tolerance"
        assert [c["column"] for c in table["columns"]] == ["y"]
        assert 0 < table["max_relative_difference"] <= 1e-6

        # --- noise above it: differs, naming the file and the column
        _, doi_wild = await _publish_run(http, alice, input_did, 0.2)
        far = await _reproduce(http, carol, {"doi": doi_wild, "project": slug})
        assert far["verdict"] == "differs", far
        outcome = {f["path"]: f for f in far["files"]}
        assert outcome["sorted.txt"]["outcome"] == "identical"
        assert outcome["table.csv"]["outcome"] == "differs"
        assert [c["column"] for c in outcome["table.csv"]["columns"]] == ["y"]

        # --- an input that changed in the Data Lake: reported before running
        record = await http.get(f"/workflows/runs/{run_id}/record", headers=alice)
        assert record.status_code == 200, record.text
        changed = record.json()
        for item in changed["inputs"]:
            if item["did"] == input_did:
                item["md5"] = hashlib.md5(b"other bytes").hexdigest()
        rid = zenodo_standin.add_record(
            {"vre-run-record.json": json.dumps(changed).encode()}, title=f"Changed {uid}"
        )
        stopped = await _reproduce(http, alice, {"doi": f"10.5281/zenodo.{rid}"})
        assert stopped["verdict"] == "could not run", stopped
        assert stopped["run_id"] is None  # stopped before running
        assert input_did in stopped["reason"]
        assert "changed" in stopped["reason"]

        # --- a reproduction is a job: cancelling it cancels its re-run
        slow = record.json()
        steps = slow["spec"]["workflow"]["specification"]["steps"]
        steps[0]["commands"] = ["sleep 120", *steps[0]["commands"]]
        damaged = zenodo_standin.add_record(
            {"vre-run-record.json": json.dumps(slow).encode()}, title=f"Damaged {uid}"
        )
        tampered = await http.post(
            "/zenodo/reproductions", json={"doi": f"10.5281/zenodo.{damaged}"}, headers=carol
        )
        assert tampered.status_code == 422, tampered.text
        assert "sha256" in tampered.json()["detail"]
        slow["spec_sha256"] = canonical_sha256(slow["spec"])
        rid = zenodo_standin.add_record(
            {"vre-run-record.json": json.dumps(slow).encode(), "numbers.txt": b"3\n1\n2\n"},
            title=f"Slow {uid}",
        )
        started = await http.post(
            "/zenodo/reproductions", json={"doi": f"10.5281/zenodo.{rid}", "project": slug},
            headers=carol,
        )  # fmt: skip
        assert started.status_code == 202, started.text
        job = f"/zenodo/reproductions/{started.json()['id']}"
        running = await _poll(http, job, carol, lambda b: b["state"] == "running")
        cancelled = await http.post(f"{job}/cancel", headers=carol)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["verdict"] is None
        rerun_state = await _poll(
            http, f"/workflows/runs/{running['run_id']}", carol,
            lambda b: b["status"] not in ("queued", "running"),
        )  # fmt: skip
        assert rerun_state["status"] == "cancelled"
        log_text = (await http.get(f"{job}/logs", headers=carol)).text
        assert "submitted" in log_text
        assert log_text.rstrip().endswith("cancelled")

        # --- a record without a run record: 422 saying what is missing
        plain = zenodo_standin.add_record({"README.md": b"no run here\n"}, title=f"Plain {uid}")
        refused = await http.post(
            "/zenodo/reproductions", json={"doi": f"10.5281/zenodo.{plain}"}, headers=carol
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/run-record-missing")
        assert "vre-run-record.json" in refused.json()["detail"]
        assert "README.md" in refused.json()["detail"]
