"""Runs on a real one-node Slurm cluster (munged + slurmctld + slurmd from a temporary folder).

Steps become batch jobs on the shared workspace; Data Lake inputs are staged and outputs
registered as for local runs; Slurm's own verdicts (time limit) fail the run with its reason;
the controller may go away for a while; a restarted service picks its runs up again.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from services.workflows.tests.support.slurm import SlurmCluster
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import ContainerSettings, SlurmSettings
from vre_workflows.main import create_app


def _job(cluster: SlurmCluster, job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id],
        env=cluster.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(part.split("=", 1) for part in out.split() if "=" in part)


@pytest.fixture
def slurm_settings(
    slurm_cluster: SlurmCluster, make_settings: SettingsFactory, tmp_path: Path
) -> Any:
    def settings(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "enabled": True,
            "slurm_conf": slurm_cluster.conf,
            "workspace_root": tmp_path / "shared",
            "partitions": ["debug", "short"],
            "poll_seconds": 0.2,
            "outage_seconds": 60.0,
        }
        values.update(overrides)
        return make_settings(slurm=SlurmSettings(**values))

    return settings


@pytest.fixture
async def sw(
    slurm_settings: Any, issuer: TestIssuer, datalake: PosixDatalake
) -> AsyncIterator[Harness]:
    app = create_app(slurm_settings(), validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        yield Harness(app=app, client=client, issuer=issuer, datalake=datalake)


async def test_two_step_run_on_slurm_from_dids_to_registered_outputs(
    sw: Harness, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    sw.datalake.add_file("user.alice", "inputs/numbers.csv", b"3\n1\n2\n")
    spec = serial_spec(
        [
            step(
                "sort",
                "sort -n numbers.csv > sorted.csv",
                "echo sorted on $$SLURMD_NODENAME in job $$SLURM_JOB_ID",
                compute_backend="slurmcern",
                slurm_partition="short",
                slurm_time="2",
                kubernetes_cpu_request="1500m",
                kubernetes_memory_limit="64Mi",
            ),
            step(
                "sum",
                "mkdir -p results && awk '{s+=$$1} END {print s * ${factor}}' sorted.csv"
                " > results/sum.txt",
                compute_backend="slurmcern",
            ),
        ],
        parameters={"factor": 10},
        outputs=["sorted.csv"],
        directories=["results"],
    )
    run = await sw.submit(
        spec=spec,
        inputs=[{"did": "user.alice:inputs/numbers.csv"}],
        output={"scope": "user.alice"},
        name="slurm-sum",
    )
    assert run["backend"] == "slurm"  # chosen by compute_backend: slurmcern
    done = await sw.wait(run["id"], within=90)
    assert done["status"] == "finished", done
    assert [h["status"] for h in done["history"]] == ["queued", "running", "finished"]
    assert [s["status"] for s in done["steps"]] == ["finished", "finished"]

    # one Slurm job per step, with the step's fields mapped onto it
    ids = done["backend_ids"]
    assert set(ids) == {"job.0", "job.1"}
    first, second = _job(slurm_cluster, ids["job.0"]), _job(slurm_cluster, ids["job.1"])
    assert first["JobState"] == second["JobState"] == "COMPLETED"
    assert first["Partition"] == "short"
    assert first["TimeLimit"] == "00:02:00"
    assert first["NumCPUs"] == "2"  # 1500m → 2 whole CPUs
    assert first["MinMemoryNode"] == "64M"
    assert second["Partition"] == "debug"  # the cluster's default
    assert first["JobName"] == f"vre-{run['id']}"

    # the workspace lives on the shared root, and the logs came from the jobs themselves
    shared = tmp_path / "shared" / run["id"]
    assert (shared / "workspace" / "results" / "sum.txt").read_text() == "60\n"
    logs = await sw.client.get(f"/runs/{run['id']}/logs", headers=sw.headers())
    assert f"sorted on localhost in job {ids['job.0']}" in logs.text

    outputs = {o["path"]: o for o in done["outputs"]}
    assert set(outputs) == {"sorted.csv", "results/sum.txt"}
    stored = sw.datalake.files[outputs["results/sum.txt"]["did"]]
    assert stored.path.read_bytes() == b"60\n"
    assert done["output_dataset"] == f"user.alice:slurm-sum-{run['id'][:8]}"
    assert done["inputs"][0]["did"] == "user.alice:inputs/numbers.csv"
    assert done["inputs"][0]["staged_by"] in ("link", "copy")


async def test_slurm_fields_are_validated_at_submission(sw: Harness) -> None:
    spec = serial_spec(
        [
            step("a", "true", slurm_partition="gpu"),
            step("b", "true", slurm_time="soon"),
            step("c", "true", kubernetes_cpu_request="lots"),
        ]
    )
    refused = await sw.submit(expect=422, spec=spec, backend="slurm")
    where = {tuple(e["loc"][-2:]) for e in refused["errors"]}
    assert where == {(0, "slurm_partition"), (1, "slurm_time"), (2, "kubernetes_cpu_request")}
    assert "not offered to the VRE (allowed: debug, short)" in refused["errors"][0]["msg"]


async def test_unknown_partition_of_the_cluster(
    slurm_settings: Any, issuer: TestIssuer, datalake: PosixDatalake
) -> None:
    app = create_app(slurm_settings(partitions=[]), validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        h = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        spec = serial_spec([step("a", "true", slurm_partition="gpu")])
        refused = await h.submit(expect=422, spec=spec, backend="slurm")
        assert refused["errors"][0]["msg"] == "the Slurm cluster has no partition 'gpu'"


async def test_cancel_stops_the_slurm_job(sw: Harness, slurm_cluster: SlurmCluster) -> None:
    spec = serial_spec([step("long", "sleep 120"), step("never", "true")])
    run = await sw.submit(spec=spec, backend="slurm")
    running = await sw.wait_step(run["id"], 0, "running", within=60)
    job_id = running["backend_ids"]["job.0"]
    assert _job(slurm_cluster, job_id)["JobState"] == "RUNNING"
    response = await sw.client.post(f"/runs/{run['id']}/cancel", headers=sw.headers())
    assert response.status_code == 200, response.text
    done = await sw.wait(run["id"], within=30)
    assert done["status"] == "cancelled"
    assert [s["status"] for s in done["steps"]] == ["cancelled", "skipped"]
    assert _job(slurm_cluster, job_id)["JobState"] == "CANCELLED"


async def test_controller_down_is_503_at_submission_and_borne_during_a_run(
    sw: Harness, slurm_cluster: SlurmCluster
) -> None:
    spec = serial_spec([step("wait", "sleep 4", "echo survived > out.txt")], outputs=["out.txt"])
    run = await sw.submit(spec=spec, backend="slurm")
    await sw.wait_step(run["id"], 0, "running", within=60)

    slurm_cluster.stop_controller()
    try:
        ready = (await sw.client.get("/readyz")).json()["dependencies"]
        slurm = next(d for d in ready if d["name"] == "slurm")
        assert slurm["up"] is False
        assert "Slurm controller" in slurm["reason"]
        refused = await sw.client.post(
            "/runs", json={"spec": spec, "backend": "slurm"}, headers=sw.headers()
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "Retry-After" in refused.headers
        assert "Slurm controller" in refused.json()["detail"]
        await asyncio.sleep(5)  # the job ends while nobody can ask the controller about it
        assert (await sw.get(run["id"]))["status"] == "running"
    finally:
        slurm_cluster.start_controller()

    done = await sw.wait(run["id"], within=60)
    assert done["status"] == "finished", done
    assert done["outputs"][0]["path"] == "out.txt"


async def test_a_restarted_service_picks_the_slurm_run_up_again(
    sw: Harness, slurm_cluster: SlurmCluster
) -> None:
    sw.datalake.add_file("user.alice", "in.txt", b"hello\n")
    spec = serial_spec(
        [step("slow", "sleep 3 && cp in.txt mid.txt"), step("after", "cat mid.txt > out.txt")],
        outputs=["out.txt"],
    )
    run = await sw.submit(
        spec=spec,
        backend="slurm",
        inputs=[{"did": "user.alice:in.txt"}],
        output={"scope": "user.alice"},
    )
    running = await sw.wait_step(run["id"], 0, "running", within=60)
    manager = sw.factory.manager
    await manager.stop()  # the service goes away; the job goes on
    assert (await sw.get(run["id"]))["status"] == "running"
    assert _job(slurm_cluster, running["backend_ids"]["job.0"])["JobState"] in (
        "RUNNING",
        "COMPLETED",
    )
    await manager.start()  # a new process would do the same at start-up
    done = await sw.wait(run["id"], within=60)
    assert done["status"] == "finished", done
    assert done["backend_ids"]["job.0"] == running["backend_ids"]["job.0"]  # not resubmitted
    (output,) = done["outputs"]
    assert sw.datalake.files[output["did"]].path.read_bytes() == b"hello\n"


@pytest.mark.slow
async def test_slurm_time_limit_fails_the_run_with_slurms_reason(
    sw: Harness, slurm_cluster: SlurmCluster
) -> None:
    """Slurm rounds limits up to minutes and checks them every 30 s: 60–90 s."""
    spec = serial_spec(
        [step("forever", "sleep 300", slurm_time="1"), step("never", "true")], outputs=["x"]
    )
    run = await sw.submit(spec=spec, backend="slurm", register_partial_outputs=False)
    done = await sw.wait(run["id"], within=150)
    assert done["status"] == "failed", done
    detail = done["error"]["detail"]
    assert "ended TIMEOUT" in detail
    assert "reason TimeLimit" in detail
    assert "time limit" in detail
    assert [s["status"] for s in done["steps"]] == ["failed", "skipped"]
    logs = await sw.client.get(f"/runs/{done['id']}/logs", headers=sw.headers())
    assert "DUE TO TIME LIMIT" in logs.text  # slurmstepd's own line, in the step's log


@pytest.mark.slow
async def test_snakemake_rules_run_as_slurm_jobs(
    slurm_settings: Any, issuer: TestIssuer, datalake: PosixDatalake
) -> None:
    """snakemake drives the workflow; each rule is a Slurm job (its executor plugin)."""
    snakefile = (
        'rule all:\n    input: "results/both.txt"\n\n'
        'rule greet:\n    output: "results/greeting.txt"\n'
        '    params: who=config.get("who", "nobody")\n'
        '    shell: "echo hello {params.who} in job $SLURM_JOB_ID > {output}"\n\n'
        'rule both:\n    input: "results/greeting.txt"\n    output: "results/both.txt"\n'
        '    shell: "cat {input} > {output} && echo done in job $SLURM_JOB_ID >> {output}"\n'
    )
    settings = slurm_settings(snakemake_first_status_seconds=1, snakemake_timeout_seconds=240)
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        sw = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        run = await sw.submit(
            spec={
                "inputs": {"parameters": {"who": "nobody"}},
                "workflow": {"type": "snakemake", "file": "Snakefile"},
                "outputs": {"files": ["results/both.txt"]},
            },
            parameters={"who": "slurm"},
            files={"Snakefile": snakefile},
            backend="slurm",
        )
        done = await sw.wait(run["id"], within=240)
        logs = await client.get(f"/runs/{run['id']}/logs", headers=sw.headers())
        assert done["status"] == "finished", logs.text
        assert "--executor slurm" in logs.text
        text = (
            await client.get(f"/runs/{run['id']}/outputs/results/both.txt", headers=sw.headers())
        ).text
        first, second = text.splitlines()
        assert first.startswith("hello slurm in job ")
        assert second.startswith("done in job ")
        jobs = {first.rsplit(" ", 1)[1], second.rsplit(" ", 1)[1]}
        assert len(jobs) == 2  # two rules, two Slurm jobs
        assert all(job.isdigit() for job in jobs)
        (output,) = done["outputs"]
        assert datalake.files[output["did"]].path.read_text() == text


async def test_runs_of_one_project_wait_for_its_slurm_slots(
    slurm_settings: Any, issuer: TestIssuer, datalake: PosixDatalake
) -> None:
    app = create_app(
        slurm_settings(max_runs_per_project=1), validator=issuer.validator(), datalake=datalake
    )
    async with app_client(app) as client:
        h = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        hold = serial_spec([step("hold", "while [ ! -e go ]; do sleep 0.2; done")])
        spec = serial_spec([step("nap", "sleep 1")])
        first = await h.submit(spec=hold, backend="slurm")
        second = await h.submit(spec=spec, backend="slurm")
        other = await h.submit(user="bob", spec=spec, backend="slurm")
        await h.wait_step(first["id"], 0, "running", within=60)
        assert (await h.wait(other["id"], user="bob", within=60))["status"] == "finished"
        assert h.factory.manager.queued_ids() == [second["id"]]  # alice's one slot is taken
        (h.factory.manager.paths(first["id"]).workspace / "go").touch()
        done = [await h.wait(r["id"], within=60) for r in (first, second)]
        assert all(d["status"] == "finished" for d in done)
        assert done[1]["started_at"] >= done[0]["finished_at"]


async def test_slurm_job_pulls_the_steps_image_on_the_node(
    slurm_settings: Any,
    issuer: TestIssuer,
    datalake: PosixDatalake,
    registry: tuple[Any, str],
) -> None:
    served, image = registry
    served.forget(image)
    settings = slurm_settings()
    settings.local.allow_host_execution = False
    settings.local.containers = ContainerSettings(
        runtime="podman",
        containers_conf=served.containers_conf,
        registries_conf=served.registries_conf,
        allowed_registries=[served.host],
    )
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        h = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        spec = serial_spec(
            [step("inside", "echo from $$(cat /proc/1/comm) > where.txt", image=image)],
            outputs=["where.txt"],
        )
        run = await h.submit(spec=spec, backend="slurm")
        assert run["steps"][0]["execution"] == "container"
        done = await h.wait(run["id"], within=120)
        logs = (await client.get(f"/runs/{run['id']}/logs", headers=h.headers())).text
        assert done["status"] == "finished", logs
        assert "Writing manifest" in logs  # podman pulled it inside the job
        where = await client.get(f"/runs/{run['id']}/outputs/where.txt", headers=h.headers())
        assert where.text == "from podman-init\n"
