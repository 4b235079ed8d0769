"""The local executor: real subprocesses in real workspaces, Data Lake inputs and outputs."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import zlib
from pathlib import Path

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from vre_common.testing import app_client
from vre_workflows.backends.process import live_group_members
from vre_workflows.config import ContainerSettings
from vre_workflows.main import create_app


def _checksums(data: bytes) -> tuple[str, str]:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}", hashlib.md5(data).hexdigest()


async def test_two_step_workflow_from_did_to_registered_outputs(wf: Harness) -> None:
    wf.datalake.add_file("user.alice", "inputs/numbers.csv", b"3\n1\n2\n")
    spec = serial_spec(
        [
            step("sort", "sort -n numbers.csv > sorted.csv", "echo sorted by ${who}"),
            step(
                "sum",
                "mkdir -p results && awk '{s+=$$1} END {print s * ${factor}}' sorted.csv"
                " > results/sum.txt",
                kubernetes_job_timeout=60,
            ),
        ],
        parameters={"factor": 1, "who": "nobody"},
        outputs=["sorted.csv"],
        directories=["results"],
    )
    run = await wf.submit(
        spec=spec,
        parameters={"factor": 10, "who": "alice"},
        inputs=[{"did": "user.alice:inputs/numbers.csv"}],
        output={"scope": "user.alice", "rse_expression": "LOCAL_1", "lifetime": 3600},
        name="sum-numbers",
    )
    assert run["status"] == "queued"
    assert run["parameters"] == {"factor": 10, "who": "alice"}
    assert run["steps"][1]["commands"][0].startswith("mkdir -p results && awk '{s+=$1}")
    assert "* 10" in run["steps"][1]["commands"][0]

    done = await wf.wait(run["id"])
    assert done["status"] == "finished", done
    assert [h["status"] for h in done["history"]] == ["queued", "running", "finished"]
    assert done["started_at"]
    assert done["finished_at"]
    assert [s["status"] for s in done["steps"]] == ["finished", "finished"]
    assert {s["execution"] for s in done["steps"]} == {"host"}
    assert any("runs on the host instead" in w for w in done["warnings"])
    assert done["images"] == ["docker.io/library/debian:bookworm-slim"]

    (staged,) = done["inputs"]
    assert staged["did"] == "user.alice:inputs/numbers.csv"
    assert staged["path"] == "numbers.csv"
    # hard link, unless the service runs as root (permission bits would not protect it)
    assert staged["staged_by"] == ("copy" if os.geteuid() == 0 else "link")
    assert (staged["adler32"], staged["md5"]) == _checksums(b"3\n1\n2\n")

    outputs = {o["path"]: o for o in done["outputs"]}
    assert set(outputs) == {"sorted.csv", "results/sum.txt"}
    dataset = f"user.alice:sum-numbers-{run['id'][:8]}"
    assert done["output_dataset"] == dataset
    assert outputs["results/sum.txt"]["did"] == f"{dataset}/results/sum.txt"
    stored = wf.datalake.files[outputs["results/sum.txt"]["did"]]
    assert stored.path.read_bytes() == b"60\n"
    assert (stored.adler32, stored.md5) == _checksums(b"60\n")
    assert outputs["results/sum.txt"]["md5"] == stored.md5
    assert stored.metadata["rse"] == "LOCAL_1"
    meta = wf.datalake.datasets[dataset].metadata
    assert meta["run_id"] == run["id"]
    assert meta["spec_sha256"] == run["spec_sha256"]
    assert meta["input_dids"] == "user.alice:inputs/numbers.csv"
    assert meta["images"] == "docker.io/library/debian:bookworm-slim"
    assert meta["lifetime"] == 3600
    provenance = done["provenance_did"]
    assert provenance == f"{dataset}/vre-run.json"
    assert sorted(wf.datalake.datasets[dataset].files) == sorted(
        [provenance, *(o["did"] for o in outputs.values())]
    )
    manifest = json.loads(wf.datalake.files[provenance].path.read_text())
    assert manifest["run_id"] == run["id"]
    assert manifest["spec_sha256"] == run["spec_sha256"]
    assert manifest["inputs"][0]["did"] == "user.alice:inputs/numbers.csv"
    assert {o["path"] for o in manifest["outputs"]} == set(outputs)
    assert manifest["parameters"] == {"factor": 10, "who": "alice"}

    logs = await wf.client.get(f"/runs/{run['id']}/logs", headers=wf.headers())
    assert "==> step 0: sort (finished) <==" in logs.text
    assert "sorted by alice" in logs.text
    one = await wf.client.get(
        f"/runs/{run['id']}/logs", params={"step": "sort"}, headers=wf.headers()
    )
    assert "sorted by alice" in one.text
    assert "==>" not in one.text

    listed = await wf.client.get(f"/runs/{run['id']}/outputs", headers=wf.headers())
    assert listed.json()["dataset"] == dataset
    download = await wf.client.get(
        f"/runs/{run['id']}/outputs/results/sum.txt", headers=wf.headers()
    )
    assert download.status_code == 200
    assert download.content == b"60\n"
    assert download.headers["x-checksum-md5"] == stored.md5


async def test_failing_step_keeps_its_log_and_stops_the_run(wf: Harness) -> None:
    spec = serial_spec(
        [
            step("ok", "echo first > first.txt"),
            step("broken", "echo about to fail", "exit 3", "echo never"),
            step("later", "touch later.txt"),
        ],
        outputs=["first.txt"],
    )
    run = await wf.submit(spec=spec, output={"scope": "user.alice"})
    done = await wf.wait(run["id"])
    assert done["status"] == "failed"
    assert [s["status"] for s in done["steps"]] == ["finished", "failed", "skipped"]
    assert done["steps"][1]["exit_code"] == 3
    assert "command 2 exited with code 3" in done["steps"][1]["message"]
    assert done["error"]["title"] == "Run failed"
    workspace = wf.factory.manager.paths(run["id"]).workspace
    assert (workspace / "first.txt").exists()
    assert not (workspace / "later.txt").exists()
    log = await wf.client.get(
        f"/runs/{run['id']}/logs", params={"step": "broken"}, headers=wf.headers()
    )
    assert "about to fail" in log.text
    assert "never" not in log.text.replace("command", "")
    assert wf.datalake.datasets == {}  # a failed run registers nothing
    assert done["outputs"] == []


async def test_step_time_limit_kills_the_step(wf: Harness) -> None:
    spec = serial_spec(
        [step("slow", "echo $$$$ > pid.txt; sleep 60", kubernetes_job_timeout=1), step("b", "true")]
    )
    run = await wf.submit(spec=spec)
    done = await wf.wait(run["id"], within=30)
    assert done["status"] == "failed"
    assert "exceeded its time limit of 1 s" in done["steps"][0]["message"]
    assert done["steps"][1]["status"] == "skipped"
    duration = _ts(done["steps"][0]["finished_at"]) - _ts(done["steps"][0]["started_at"])
    assert duration < 10
    pid = int((wf.factory.manager.paths(run["id"]).workspace / "pid.txt").read_text())
    assert live_group_members(pid) == []


async def test_cancel_kills_the_whole_process_group(wf: Harness) -> None:
    spec = serial_spec(
        [
            step(
                "forever",
                "echo $$$$ > pid.txt; (sleep 300 &) ; sleep 300 & sleep 300; wait",
            ),
            step("next", "touch next.txt"),
        ],
        outputs=["next.txt"],
    )
    run = await wf.submit(spec=spec, output={"scope": "user.alice"})
    await wf.wait_step(run["id"], 0, "running")
    pid_file = wf.factory.manager.paths(run["id"]).workspace / "pid.txt"
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    pgid = int(pid_file.read_text())
    assert live_group_members(pgid)
    response = await wf.client.post(f"/runs/{run['id']}/cancel", headers=wf.headers())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert live_group_members(pgid) == []
    done = await wf.get(run["id"])
    assert [s["status"] for s in done["steps"]] == ["cancelled", "skipped"]
    assert done["history"][-1]["status"] == "cancelled"
    assert wf.datalake.datasets == {}
    again = await wf.client.post(f"/runs/{run['id']}/cancel", headers=wf.headers())
    assert again.status_code == 409


async def test_concurrency_limit_and_fifo_queue(
    make_settings: SettingsFactory,
    issuer,
    datalake: PosixDatalake,  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(local={"max_concurrent_runs": 1})
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        wf = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        spec = serial_spec([step("wait", "sleep 0.6")])
        runs = [await wf.submit(spec=spec, name=f"r{i}") for i in range(3)]
        await wf.wait_step(runs[0]["id"], 0, "running")
        second = await wf.get(runs[1]["id"])
        assert second["status"] == "queued"
        assert wf.factory.manager.queued_ids() == [runs[1]["id"], runs[2]["id"]]
        done = [await wf.wait(r["id"]) for r in runs]
        assert all(d["status"] == "finished" for d in done)
        for before, after in itertools.pairwise(done):
            assert _ts(after["started_at"]) >= _ts(before["finished_at"])
        assert wf.factory.manager.max_concurrent_seen == 1


async def test_cancel_a_queued_run(
    make_settings: SettingsFactory,
    issuer,
    datalake: PosixDatalake,  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(
        make_settings(local={"max_concurrent_runs": 1}),
        validator=issuer.validator(),
        datalake=datalake,
    )
    async with app_client(app) as client:
        wf = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        first = await wf.submit(spec=serial_spec([step("a", "sleep 0.5")]))
        second = await wf.submit(spec=serial_spec([step("b", "touch ran.txt")]))
        response = await wf.client.post(f"/runs/{second['id']}/cancel", headers=wf.headers())
        assert response.json()["status"] == "cancelled"
        assert response.json()["steps"][0]["status"] == "skipped"
        assert (await wf.wait(first["id"]))["status"] == "finished"
        await asyncio.sleep(0.2)
        workspace = wf.factory.manager.paths(second["id"]).workspace
        assert not (workspace / "ran.txt").exists()


async def test_download_staging_uploads_and_inline_files(
    tmp_path: Path, make_settings, issuer
) -> None:  # type: ignore[no-untyped-def]
    lake = PosixDatalake(tmp_path / "remote-lake", posix=False)
    lake.add_file("user.alice", "a.txt", b"A\n")
    lake.add_file("user.alice", "b.txt", b"B\n")
    lake.add_dataset("user.alice", "pair", ["user.alice:a.txt", "user.alice:b.txt"])
    app = create_app(make_settings(), validator=issuer.validator(), datalake=lake)
    async with app_client(app) as client:
        wf = Harness(app=app, client=client, issuer=issuer, datalake=lake)
        spec = serial_spec([step("cat", "bash code/run.sh > out.txt")], outputs=["out.txt"])
        body = {
            "spec": spec,
            "inputs": [{"did": "user.alice:pair", "path": "data"}],
            "files": {"code/run.sh": "cat data/a.txt data/b.txt extra/notes.txt\n"},
        }
        response = await client.post(
            "/runs",
            data={"run": json.dumps(body)},
            files=[("files", ("extra/notes.txt", b"N\n", "text/plain"))],
            headers=wf.headers(),
        )
        assert response.status_code == 201, response.text
        run = response.json()
        done = await wf.wait(run["id"])
        assert done["status"] == "finished", done
        kinds = {i["path"]: (i["kind"], i["staged_by"]) for i in done["inputs"]}
        assert kinds == {
            "code/run.sh": ("inline", "copy"),
            "extra/notes.txt": ("upload", "copy"),
            "data/a.txt": ("did", "download"),
            "data/b.txt": ("did", "download"),
        }
        assert sorted(lake.downloads) == ["user.alice:a.txt", "user.alice:b.txt"]
        out = await client.get(f"/runs/{run['id']}/outputs/out.txt", headers=wf.headers())
        assert out.content == b"A\nB\nN\n"

        bad = await client.post(
            "/runs",
            data={"run": json.dumps({"spec": spec})},
            files=[("files", ("../evil.txt", b"x", "text/plain"))],
            headers=wf.headers(),
        )
        assert bad.status_code == 422
        missing = await wf.submit(expect=404, spec=spec, inputs=[{"did": "user.alice:nothing"}])
        assert "nothing" in missing["detail"]


async def test_only_the_owner_sees_and_acts(wf: Harness) -> None:
    run = await wf.submit(spec=serial_spec([step("a", "echo hi > hi.txt")], outputs=["hi.txt"]))
    await wf.wait(run["id"])
    for method, path in [
        ("GET", f"/runs/{run['id']}"),
        ("GET", f"/runs/{run['id']}/logs"),
        ("GET", f"/runs/{run['id']}/outputs"),
        ("GET", f"/runs/{run['id']}/outputs/hi.txt"),
        ("POST", f"/runs/{run['id']}/cancel"),
        ("DELETE", f"/runs/{run['id']}"),
    ]:
        response = await wf.client.request(method, path, headers=wf.headers("bob"))
        assert response.status_code == 404, (method, path, response.text)
    rerun = await wf.client.post(f"/runs/{run['id']}/rerun", json={}, headers=wf.headers("bob"))
    assert rerun.status_code == 404
    listed = await wf.client.get("/runs", headers=wf.headers("bob"))
    assert listed.json()["total"] == 0


async def test_list_filter_paginate_delete_and_rerun(wf: Harness) -> None:
    spec = serial_spec(
        [step("say", "echo ${word} > word.txt")], parameters={"word": "one"}, outputs=["word.txt"]
    )
    first = await wf.submit(spec=spec, name="words")
    await wf.wait(first["id"])
    failing = await wf.submit(spec=serial_spec([step("x", "false")]), name="broken")
    await wf.wait(failing["id"])

    rerun = await wf.client.post(
        f"/runs/{first['id']}/rerun", json={"parameters": {"word": "two"}}, headers=wf.headers()
    )
    assert rerun.status_code == 201, rerun.text
    second = await wf.wait(rerun.json()["id"])
    assert second["rerun_of"] == first["id"]
    assert second["parameters"] == {"word": "two"}
    assert second["spec_sha256"] == first["spec_sha256"]
    content = await wf.client.get(f"/runs/{second['id']}/outputs/word.txt", headers=wf.headers())
    assert content.text == "two\n"

    everything = (await wf.client.get("/runs", headers=wf.headers())).json()
    assert everything["total"] == 3
    assert everything["items"][0]["id"] == second["id"]
    named = (await wf.client.get("/runs?name=words", headers=wf.headers())).json()
    assert {r["id"] for r in named["items"]} == {first["id"], second["id"]}
    failed = (await wf.client.get("/runs?status=failed", headers=wf.headers())).json()
    assert [r["id"] for r in failed["items"]] == [failing["id"]]
    page = (await wf.client.get("/runs?size=2&page=2", headers=wf.headers())).json()
    assert page["total"] == 3
    assert len(page["items"]) == 1

    delete = await wf.client.delete(f"/runs/{first['id']}", headers=wf.headers())
    assert delete.status_code == 204
    assert not wf.factory.manager.paths(first["id"]).root.exists()
    gone = await wf.get(first["id"])
    assert gone["status"] == "deleted"
    assert gone["workspace_removed"] is True
    output = await wf.client.get(f"/runs/{first['id']}/outputs/word.txt", headers=wf.headers())
    assert output.status_code == 404
    listed = (await wf.client.get("/runs", headers=wf.headers())).json()
    assert first["id"] not in {r["id"] for r in listed["items"]}
    deleted = (await wf.client.get("/runs?status=deleted", headers=wf.headers())).json()
    assert [r["id"] for r in deleted["items"]] == [first["id"]]


async def test_missing_image_without_host_execution_is_explained(
    make_settings: SettingsFactory,
    issuer,
    datalake: PosixDatalake,  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(
        make_settings(
            local={"allow_host_execution": False, "containers": ContainerSettings(runtime="podman")}
        ),
        validator=issuer.validator(),
        datalake=datalake,
    )
    async with app_client(app) as client:
        wf = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        problem = await wf.submit(
            expect=422,
            spec=serial_spec([step("a", "true", image="docker.io/acme/analysis:1.2")]),
        )
        assert problem["type"].endswith("/image-unavailable")
        assert "docker.io/acme/analysis:1.2" in problem["detail"]
        (error,) = problem["errors"]
        assert error["image"] == "docker.io/acme/analysis:1.2"
        assert "podman load" in error["msg"]
        assert error["loc"][-1] == "environment"
        engine = await wf.submit(
            expect=422,
            spec={"workflow": {"type": "snakemake", "file": "Snakefile"}},
            files={"Snakefile": "rule all:\n  shell: 'true'\n"},
        )
        assert "does not allow host execution" in engine["detail"]


async def test_snakemake_and_cwl_run_through_their_engines(wf: Harness) -> None:
    snakefile = (
        'rule all:\n    input: "results/greeting.txt"\n\n'
        'rule greet:\n    output: "results/greeting.txt"\n'
        '    params: who=config["who"]\n'
        '    shell: "echo hello {params.who} > {output}"\n'
    )
    snake = await wf.submit(
        spec={
            "inputs": {"parameters": {"who": "nobody"}},
            "workflow": {"type": "snakemake", "file": "Snakefile"},
            "outputs": {"files": ["results/greeting.txt"]},
        },
        parameters={"who": "snakes"},
        files={"Snakefile": snakefile},
    )
    cwl_tool = (
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: echo\n"
        "inputs:\n  message:\n    type: string\n    inputBinding: {position: 1}\n"
        "stdout: said.txt\noutputs:\n  said:\n    type: stdout\n"
    )
    cwl = await wf.submit(
        spec={
            "inputs": {"parameters": {"message": "hi"}},
            "workflow": {"type": "cwl", "file": "tool.cwl"},
            "outputs": {"files": ["outputs/said.txt"]},
        },
        parameters={"message": "hello cwl"},
        files={"tool.cwl": cwl_tool},
    )
    snake_done = await wf.wait(snake["id"], within=120)
    cwl_done = await wf.wait(cwl["id"], within=120)
    for done in (snake_done, cwl_done):
        if done["status"] != "finished":
            log = await wf.client.get(f"/runs/{done['id']}/logs", headers=wf.headers())
            raise AssertionError(log.text)
    assert snake_done["steps"][0]["name"] == "snakemake"
    assert snake_done["steps"][0]["execution"] == "engine"
    out = await wf.client.get(
        f"/runs/{snake['id']}/outputs/results/greeting.txt", headers=wf.headers()
    )
    assert out.text == "hello snakes\n"
    said = await wf.client.get(f"/runs/{cwl['id']}/outputs/outputs/said.txt", headers=wf.headers())
    assert said.text == "hello cwl\n"


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


async def test_personal_run_outputs_land_in_the_submitters_own_scope(wf: Harness) -> None:
    """No ``output`` given: the outputs go to user.<name> in a dataset named after the run;
    a run whose outputs could not be registered does not end as a plain ``finished``."""
    spec = serial_spec(
        [step("make", "echo 42 > answer.txt && echo 7 > other.txt")],
        outputs=["answer.txt", "other.txt"],
    )
    run = await wf.submit(spec=spec, name="mine")
    assert run["destination"]["scope"] == "user.alice"
    done = await wf.wait(run["id"])
    assert done["status"] == "finished", done
    assert done["output_dataset"] == f"user.alice:mine-{run['id'][:8]}"
    registered = {o["path"]: o["did"] for o in done["outputs"]}
    assert wf.datalake.files[registered["answer.txt"]].path.read_bytes() == b"42\n"
    assert done["provenance_did"]

    wf.datalake.fail_upload_of = "other.txt"
    refused = await wf.submit(spec=spec, name="refused")
    failed = await wf.wait(refused["id"])
    assert failed["status"] == "failed", failed
    assert "refused" in failed["error"]["detail"]
    assert {o["path"]: o["did"] is not None for o in failed["outputs"]}["other.txt"] is False
