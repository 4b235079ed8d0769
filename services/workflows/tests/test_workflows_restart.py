"""A service killed mid-run: on restart the run is interrupted and its processes are gone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from vre_common.testing import TestIssuer, app_client, free_port
from vre_workflows.backends.process import live_group_members
from vre_workflows.main import create_app

ROOT = Path(__file__).resolve().parents[3]


async def test_restart_marks_running_runs_interrupted(
    tmp_path: Path, make_settings: SettingsFactory, issuer: TestIssuer, datalake: PosixDatalake
) -> None:
    settings = make_settings()
    port = free_port()
    config = tmp_path / "serve.json"
    config.write_text(
        json.dumps(
            {
                "settings": json.loads(settings.model_dump_json()),
                "issuer": issuer.issuer,
                "audience": issuer.audience,
                "public_key": issuer.key.as_dict(private=False),
                "port": port,
            }
        )
    )
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.workflows.tests.support.serve", str(config), cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                assert server.returncode is None, "the service process exited"
                assert time.monotonic() < deadline, "the service did not start"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            spec = serial_spec(
                [step("long", "echo $$$$ > pid.txt; sleep 120"), step("after", "true")]
            )
            response = await client.post("/runs", json={"spec": spec}, headers=issuer.headers())
            assert response.status_code == 201, response.text
            run_id = response.json()["id"]
            pid_file = settings.data_dir / "runs" / run_id / "workspace" / "pid.txt"
            deadline = time.monotonic() + 20
            while not (pid_file.exists() and pid_file.read_text().strip()):
                assert time.monotonic() < deadline, "the step never started"
                await asyncio.sleep(0.05)
            pgid = int(pid_file.read_text())
            running = (await client.get(f"/runs/{run_id}", headers=issuer.headers())).json()
            assert running["status"] == "running"
    finally:
        os.kill(server.pid, signal.SIGKILL)  # a crash: no shutdown code runs
        await server.wait()

    # The step outlived its service (its own session): the restart must clean it up.
    assert live_group_members(pgid)

    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        wf = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        run = await wf.get(run_id)
        assert run["status"] == "interrupted"
        assert [h["status"] for h in run["history"]] == ["queued", "running", "interrupted"]
        assert "restarted while the run was running" in run["history"][-1]["detail"]
        assert [s["status"] for s in run["steps"]] == ["interrupted", "skipped"]
        assert run["finished_at"] is not None
        for _ in range(100):
            if not live_group_members(pgid):
                break
            await asyncio.sleep(0.05)
        assert live_group_members(pgid) == []
        # The service keeps working after the restart.
        fresh = await wf.submit(spec=serial_spec([step("ok", "true")]))
        assert (await wf.wait(fresh["id"]))["status"] == "finished"


async def test_graceful_stop_interrupts_active_runs(wf: Harness) -> None:
    run = await wf.submit(spec=serial_spec([step("long", "echo $$$$ > pid.txt; sleep 120")]))
    await wf.wait_step(run["id"], 0, "running")
    pid_file = wf.factory.manager.paths(run["id"]).workspace / "pid.txt"
    for _ in range(400):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    pgid = int(pid_file.read_text())
    await wf.factory.manager.stop()
    assert live_group_members(pgid) == []
    async with wf.factory.db.sessionmaker() as session:
        from vre_workflows.storage.runs import RunStore

        stored = await RunStore(session).get(run["id"])
    assert stored is not None
    assert stored.status == "interrupted"
    await wf.factory.manager.start()
