"""Rucio stops during an upload, a listing and a workflow's output registration.

Each case: a 503 problem within the Rucio client's configured timeouts, nothing half
registered in Rucio and nothing left on the storage element, and the same request working
once Rucio is back. The fault proxy stops the real Rucio server at the exact request of
interest; "after" cases let Rucio do the work and lose its answer (the outcome is unknown to
the datalake), the hardest case for "nothing half registered".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from tests.faults.conftest import RUCIO_CONNECT_TIMEOUT, RUCIO_READ_TIMEOUT, Lake
from tests.faults.support import assert_problem, assert_within

pytestmark = pytest.mark.rucio

# One Rucio call's worst case; an upload's registration makes a few calls after the outage
# began, each failing at once (connection refused), so one bound covers the request.
BOUND = RUCIO_CONNECT_TIMEOUT + RUCIO_READ_TIMEOUT
SETTLE = 15.0  # how long the datalake may take to settle a registration once Rucio is back


def _on_rse(root: Path, fragment: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and fragment in p.name]


async def _rucio_did(lake: Lake, scope: str, name: str) -> dict[str, Any] | None:
    """The DID as Rucio itself has it (admin token, straight to the server) with its replica
    paths and rules, or None."""
    token = await asyncio.to_thread(lake.rucio.admin_token)
    headers = {"X-Rucio-Auth-Token": token}
    async with httpx.AsyncClient(base_url=lake.rucio.url, timeout=10, headers=headers) as rucio:
        r = await rucio.get(f"/dids/{scope}/{name}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        did: dict[str, Any] = r.json()
        replicas = await rucio.post(
            "/replicas/list",
            json={"dids": [{"scope": scope, "name": name}], "all_states": True},
        )
        did["paths"] = [
            Path(unquote(urlsplit(pfn).path))
            for line in replicas.text.splitlines()
            if line.strip()
            for pfns in json.loads(line).get("rses", {}).values()
            for pfn in pfns
        ]
        rules = await rucio.get(f"/dids/{scope}/{name}/rules")
        did["rules"] = [json.loads(line) for line in rules.text.splitlines() if line.strip()]
        return did


def _complete(did: dict[str, Any], data: bytes, account: str) -> bool:
    """Registered in full: our size and checksums, the bytes on the RSE, the account's rule."""
    return (
        did.get("bytes") == len(data)
        and did.get("md5") == hashlib.md5(data, usedforsecurity=False).hexdigest()
        and bool(did["paths"])
        and all(p.is_file() and p.read_bytes() == data for p in did["paths"])
        and any(r["account"] == account for r in did["rules"])
    )


async def _settled(lake: Lake, scope: str, name: str, data: bytes | None) -> str:
    """Wait (up to SETTLE) until the upload is either not registered at all (no DID, no file
    on the RSE) or registered in full (``_complete``, no temporary file); which of the two."""
    deadline = time.monotonic() + SETTLE
    while True:
        did = await _rucio_did(lake, scope, name)
        files = _on_rse(lake.rse_root, name)
        if did is None and not files:
            return "not registered"
        temporary = [f for f in files if ".vre-part" in f.name]
        account = scope.removeprefix("user.")
        if did is not None and data is not None and not temporary and _complete(did, data, account):
            return "registered"
        if time.monotonic() > deadline:
            raise AssertionError(f"half done: DID {did}, files {files}")
        await asyncio.sleep(0.2)


async def _chunks(data: bytes, between: Any = None) -> AsyncIterator[bytes]:
    half = len(data) // 2
    yield data[:half]
    if between is not None:
        await between()
    yield data[half:]


@pytest.mark.parametrize(
    ("moment", "outcome"),
    [
        ("while the body streams", "not registered"),
        ("as the replica is registered", "not registered"),
        # Rucio did the work and its answer was lost: the datalake cannot take a replica back
        # (Rucio's policy leaves deletion to the reaper), so it finishes the registration.
        ("after registering the replica, answer lost", "registered"),
        ("as the rule is added", "registered"),
        ("after adding the rule, answer lost", "registered"),
    ],
)
async def test_rucio_stopped_during_an_upload(lake: Lake, moment: str, outcome: str) -> None:
    data = os.urandom(300_000)
    name = f"fault-{uuid.uuid4().hex[:10]}.bin"
    stopped: list[float] = []

    async def stop() -> None:
        stopped.append(time.monotonic())
        await lake.stop_rucio()

    between = None
    if moment == "while the body streams":
        between = stop
    elif moment == "as the replica is registered":
        lake.proxy.before(b"POST /replicas HTTP", stop)
    elif moment == "after registering the replica, answer lost":
        lake.proxy.after(b"POST /replicas HTTP", 0, stop)
    elif moment == "as the rule is added":
        lake.proxy.before(b"POST /rules/ HTTP", stop)
    else:
        lake.proxy.after(b"POST /rules/ HTTP", 0, stop)

    async with httpx.AsyncClient(base_url=lake.url, timeout=60) as http:
        assert (await http.get("/scopes/mine", headers=lake.headers())).status_code == 200
        response = await http.put(
            f"/files/user.alice/{name}", content=_chunks(data, between), headers=lake.headers()
        )
        assert stopped, "Rucio was not stopped: the case did not happen"
        assert_within(stopped[0], BOUND, "upload")
        body = assert_problem(response, 503)
        assert response.headers["retry-after"] == str(lake.settings.rucio.retry_after_seconds)
        assert "rucio" in str(body["detail"]).lower()

        await lake.start_rucio()
        assert await _settled(lake, "user.alice", name, data) == outcome

        # the client's retry: stored now, or found already stored with the same bytes
        again = await http.put(f"/files/user.alice/{name}", content=data, headers=lake.headers())
        assert again.status_code == (201 if outcome == "not registered" else 200), again.text
        back = await http.get(f"/files/user.alice/{name}", headers=lake.headers())
        assert back.content == data
    did = await _rucio_did(lake, "user.alice", name)
    assert did is not None
    assert _complete(did, data, "alice")


async def _make_dids(lake: Lake, scope: str, prefix: str, count: int) -> None:
    token = await asyncio.to_thread(lake.rucio.admin_token)
    dids = [{"scope": scope, "name": f"{prefix}-{i:05d}", "type": "DATASET"} for i in range(count)]
    async with httpx.AsyncClient(base_url=lake.rucio.url, timeout=60) as rucio:
        r = await rucio.post("/dids", json=dids, headers={"X-Rucio-Auth-Token": token})
        assert r.status_code == 201, r.text


async def test_rucio_stopped_as_a_listing_starts(lake: Lake) -> None:
    prefix = f"ls-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=lake.url, timeout=60) as http:
        assert (await http.get("/scopes/mine", headers=lake.headers())).status_code == 200
        await _make_dids(lake, "user.alice", prefix, 50)
        lake.proxy.before(b"GET /dids/user.alice/dids/search", lake.stop_rucio)
        params = {"name": f"{prefix}-*", "type": "all"}
        response = await http.get("/dids/user.alice", params=params, headers=lake.headers())
        assert lake.proxy.fired_at is not None
        assert_within(lake.proxy.fired_at, BOUND, "listing")
        assert_problem(response, 503)
        await lake.start_rucio()
        again = await http.get("/dids/user.alice", params=params, headers=lake.headers())
        assert again.status_code == 200, again.text
        assert len(again.json()["items"]) == 50


async def _read_lines(response: httpx.Response, into: list[str]) -> None:
    async for line in response.aiter_lines():
        if line.strip():
            into.append(line)


async def test_rucio_stopped_while_a_listing_streams(lake: Lake) -> None:
    """Once the 200 is out the error cannot be a problem: the stream breaks, never truncates
    silently, and never hangs."""
    count = 3000
    prefix = f"ls-{uuid.uuid4().hex[:8]}"
    headers = {**lake.headers(), "Accept": "application/x-ndjson"}
    params = {"name": f"{prefix}-*", "type": "all"}
    async with httpx.AsyncClient(base_url=lake.url, timeout=60) as http:
        assert (await http.get("/scopes/mine", headers=lake.headers())).status_code == 200
        await _make_dids(lake, "user.alice", prefix, count)
        lake.proxy.after(b"GET /dids/user.alice/dids/search", 16384, lake.stop_rucio)
        lines: list[str] = []
        async with http.stream("GET", "/dids/user.alice", params=params, headers=headers) as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                await _read_lines(r, lines)
        assert lake.proxy.fired_at is not None
        assert_within(lake.proxy.fired_at, BOUND, "broken listing")
        assert len(lines) < count
        await lake.start_rucio()
        async with http.stream("GET", "/dids/user.alice", params=params, headers=headers) as r:
            assert r.status_code == 200
            assert sum([bool(line.strip()) async for line in r.aiter_lines()]) == count


# ---------------------------------------------------------------------- a workflow's outputs


def _workflows_app(lake: Lake, tmp_path: Path) -> Any:
    from vre_common.settings import DatabaseSettings
    from vre_workflows.config import (
        ContainerSettings,
        DatalakeClientSettings,
        LocalExecutorSettings,
        WorkflowsSettings,
    )
    from vre_workflows.main import create_app

    settings = WorkflowsSettings(
        data_dir=tmp_path / "wf",
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/workflows.db"),
        log_poll_seconds=0.05,
        local=LocalExecutorSettings(
            allow_host_execution=True,
            kill_grace_seconds=1.0,
            containers=ContainerSettings(runtime="none"),
        ),
        datalake=DatalakeClientSettings(url=lake.url),
    )
    return create_app(settings, validator=lake.issuer.validator())


async def _wait_run(
    client: httpx.AsyncClient, lake: Lake, run_id: str, deadline: float
) -> dict[str, Any]:
    while True:
        r = await client.get(f"/runs/{run_id}", headers=lake.headers())
        assert r.status_code == 200, r.text
        run: dict[str, Any] = r.json()
        if run["status"] in ("finished", "failed", "cancelled"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        await asyncio.sleep(0.05)


async def test_rucio_stopped_during_a_runs_output_registration(lake: Lake, tmp_path: Path) -> None:
    from services.workflows.tests.support.helpers import serial_spec, step
    from vre_common.testing import app_client

    spec = serial_spec(
        [step("make", "mkdir -p out && echo 42 > out/answer.txt && seq 1 1000 > table.txt")],
        outputs=["out/answer.txt", "table.txt"],
    )
    name = f"fault-{uuid.uuid4().hex[:8]}"
    body = {"spec": spec, "name": name, "output": {"scope": "user.alice"}}
    async with httpx.AsyncClient(base_url=lake.url, timeout=60) as http:
        assert (await http.get("/scopes/mine", headers=lake.headers())).status_code == 200
    lake.proxy.before(b"POST /replicas HTTP", lake.stop_rucio)
    async with app_client(_workflows_app(lake, tmp_path), timeout=60) as client:
        posted = await client.post("/runs", json=body, headers=lake.headers())
        assert posted.status_code == 201, posted.text
        run_id = posted.json()["id"]
        run = await _wait_run(client, lake, run_id, time.monotonic() + 60)
        assert lake.proxy.fired_at is not None, "Rucio was not stopped: the case did not happen"
        assert_within(lake.proxy.fired_at, BOUND, "the run's failure")
        # the run record survives and says why
        assert run["status"] == "failed", run
        assert run["error"]["status"] == 503, run["error"]
        assert {o["path"]: o["did"] for o in run["outputs"]} == {
            "out/answer.txt": None,
            "table.txt": None,
        }

        await lake.start_rucio()
        dataset = run["output_dataset"]
        # nothing half registered: no output DID, no bytes on the RSE, the dataset empty
        for path in ("out/answer.txt", "table.txt"):
            name = f"{dataset.partition(':')[2]}/{path}"
            assert await _settled(lake, "user.alice", name, None) == "not registered"
        async with httpx.AsyncClient(base_url=lake.url, timeout=60) as http:
            content = await http.get(
                f"/dids/user.alice/{dataset.partition(':')[2]}/content", headers=lake.headers()
            )
            assert content.status_code == 200, content.text
            assert content.json() == []

        # recovery: the same run again registers every output
        again = await client.post(f"/runs/{run_id}/rerun", json={}, headers=lake.headers())
        assert again.status_code == 201, again.text
        done = await _wait_run(client, lake, again.json()["id"], time.monotonic() + 60)
        assert done["status"] == "finished", done["error"]
        assert all(o["did"] for o in done["outputs"]), done["outputs"]
        answer = next(o for o in done["outputs"] if o["path"] == "out/answer.txt")
        scope, _, did_name = answer["did"].partition(":")
        did = await _rucio_did(lake, scope, did_name)
        assert did is not None
        assert (did["md5"], did["adler32"]) == (answer["md5"], answer["adler32"])
