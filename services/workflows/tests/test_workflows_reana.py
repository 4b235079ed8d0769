"""The REANA backend against a stand-in that validates every answer against reana_server.json."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, serve, step
from services.workflows.tests.support.reana_standin import ReanaStandIn
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import ReanaServerSettings, ReanaSettings
from vre_workflows.main import create_app
from vre_workflows.storage.schema import ReanaCredentialRow

GOOD = "tok-alice-0123456789"
OVER_QUOTA = "tok-carol-over-quota"


@pytest.fixture
async def reana() -> AsyncIterator[tuple[ReanaStandIn, str]]:
    standin = ReanaStandIn()
    standin.add_user(GOOD, "alice")
    standin.add_user(OVER_QUOTA, "carol", quota_exceeded=True)
    async with serve(standin.app) as url:
        yield standin, url
    standin.close()
    assert standin.violations == [], standin.violations


@pytest.fixture
async def rw(
    reana: tuple[ReanaStandIn, str],
    make_settings: SettingsFactory,
    issuer: TestIssuer,
    datalake: PosixDatalake,
) -> AsyncIterator[Harness]:
    _, url = reana
    settings = make_settings(
        reana=ReanaSettings(
            servers={"test": ReanaServerSettings(url=url)},
            poll_initial_seconds=0.05,
            poll_max_seconds=0.2,
        )
    )
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        yield Harness(app=app, client=client, issuer=issuer, datalake=datalake)


async def _register(rw: Harness, token: str = GOOD, user: str = "alice") -> None:
    response = await rw.client.put(
        "/credentials/reana", json={"token": token}, headers=rw.headers(user)
    )
    assert response.status_code == 200, response.text


async def test_token_registration(
    rw: Harness, reana: tuple[ReanaStandIn, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = await rw.client.put(
        "/credentials/reana", json={"token": "not-a-token"}, headers=rw.headers()
    )
    assert bad.status_code == 403
    assert bad.json()["type"].endswith("/reana-token-rejected")
    assert "Token not valid" in bad.json()["detail"]

    good = await rw.client.put("/credentials/reana", json={"token": GOOD}, headers=rw.headers())
    assert good.status_code == 200, good.text
    assert good.json()["server"] == "test"
    assert good.json()["reana_user"] == "alice"
    assert GOOD not in good.text

    listed = await rw.client.get("/credentials/reana", headers=rw.headers())
    assert [c["server"] for c in listed.json()["items"]] == ["test"]
    assert GOOD not in listed.text
    async with rw.factory.db.sessionmaker() as session:
        stored = (await session.execute(select(ReanaCredentialRow))).scalars().all()
    assert len(stored) == 1
    assert GOOD not in stored[0].token_encrypted
    assert all(GOOD not in record.getMessage() for record in caplog.records)

    unknown = await rw.client.put(
        "/credentials/reana", json={"token": GOOD, "server": "nope"}, headers=rw.headers()
    )
    assert unknown.status_code == 422
    deleted = await rw.client.delete("/credentials/reana", headers=rw.headers())
    assert deleted.status_code == 204
    again = await rw.client.delete("/credentials/reana", headers=rw.headers())
    assert again.status_code == 404


async def test_full_flow_on_reana(rw: Harness, reana: tuple[ReanaStandIn, str]) -> None:
    standin, _ = reana
    await _register(rw)
    rw.datalake.add_file("user.alice", "data/values.txt", b"4\n5\n")
    spec = serial_spec(
        [
            step("total", "awk '{s+=$$1} END {print s * ${k}}' values.txt > total.txt"),
            step("report", "mkdir -p report && cat total.txt notes.txt > report/all.txt"),
        ],
        parameters={"k": 1},
        outputs=["total.txt"],
        directories=["report"],
    )
    run = await rw.submit(
        spec=spec,
        backend="reana",
        parameters={"k": 3},
        inputs=[{"did": "user.alice:data/values.txt"}],
        files={"notes.txt": "notes\n"},
        output={"scope": "user.alice"},
        name="on-reana",
    )
    workflow_id = run["backend_ids"]["workflow_id"]
    assert run["backend_ids"]["workflow_name"] == "on-reana.1"
    assert run["reana_server"] == "test"
    done = await rw.wait(run["id"], within=60)
    assert done["status"] == "finished", done
    assert [h["status"] for h in done["history"]] == ["queued", "running", "finished"]
    assert sorted(standin.uploads[workflow_id]) == ["notes.txt", "values.txt"]
    assert [s["name"] for s in done["steps"]] == ["total", "report"]
    assert {s["execution"] for s in done["steps"]} == {"reana"}
    assert all(s["status"] == "finished" for s in done["steps"])

    outputs = {o["path"]: o for o in done["outputs"]}
    assert set(outputs) == {"total.txt", "report/all.txt"}
    total = await rw.client.get(f"/runs/{run['id']}/outputs/total.txt", headers=rw.headers())
    assert total.text == "27\n"
    stored = rw.datalake.files[outputs["report/all.txt"]["did"]]
    assert stored.path.read_bytes() == b"27\nnotes\n"
    assert rw.datalake.datasets[done["output_dataset"]].metadata["run_id"] == run["id"]

    logs = await rw.client.get(f"/runs/{run['id']}/logs", headers=rw.headers())
    assert "==> step 0: total (finished) <==" in logs.text

    delete = await rw.client.delete(f"/runs/{run['id']}", headers=rw.headers())
    assert delete.status_code == 204
    assert standin.workflows[workflow_id].status == "deleted"
    # every request carried the token as access_token and none was logged
    assert all(method and path.startswith("/api/") for method, path in standin.requests)


async def test_failed_reana_workflow_registers_nothing(
    rw: Harness, reana: tuple[ReanaStandIn, str]
) -> None:
    await _register(rw)
    spec = serial_spec(
        [step("ok", "echo partial > partial.txt"), step("boom", "echo failing; exit 2")],
        outputs=["partial.txt"],
    )
    run = await rw.submit(spec=spec, backend="reana", output={"scope": "user.alice"})
    done = await rw.wait(run["id"], within=60)
    assert done["status"] == "failed"
    assert [s["status"] for s in done["steps"]] == ["finished", "failed"]
    assert rw.datalake.datasets == {}
    log = await rw.client.get(
        f"/runs/{run['id']}/logs", params={"step": "boom"}, headers=rw.headers()
    )
    assert "failing" in log.text


async def test_reana_errors_surface_as_problems(
    rw: Harness, reana: tuple[ReanaStandIn, str]
) -> None:
    standin, _ = reana
    spec = serial_spec([step("a", "sleep 5")])
    missing = await rw.submit(expect=409, spec=spec, backend="reana")
    assert missing["type"].endswith("/reana-credentials-missing")

    await _register(rw, OVER_QUOTA, user="carol")
    quota = await rw.submit(user="carol", expect=403, spec=spec, backend="reana")
    assert quota["type"].endswith("/reana-quota-exceeded")
    assert "User quota exceeded" in quota["detail"]
    assert "55 MB" in quota["detail"]

    await _register(rw)
    standin.users[GOOD + "-revoked"] = standin.users.pop(GOOD)  # the token is revoked on REANA
    rejected = await rw.submit(expect=403, spec=spec, backend="reana")
    assert rejected["type"].endswith("/reana-token-rejected")
    standin.users[GOOD] = standin.users.pop(GOOD + "-revoked")

    # A workflow deleted on REANA behind our back: the run fails with REANA's 404 message.
    standin.job_delay = 0.5
    run = await rw.submit(spec=spec, backend="reana")
    workflow_id = run["backend_ids"]["workflow_id"]
    await rw.wait(run["id"], ("running",), within=30)
    task = standin.workflows[workflow_id].task
    assert task is not None
    task.cancel()
    standin.workflows[workflow_id].status = "deleted"
    done = await rw.wait(run["id"], within=30)
    assert done["status"] == "failed"
    assert done["error"]["type"].endswith("/reana-not-found")
    assert f"Workflow {workflow_id} does not exist" in done["error"]["detail"]


async def test_cancel_stops_the_reana_workflow(
    rw: Harness, reana: tuple[ReanaStandIn, str]
) -> None:
    standin, _ = reana
    await _register(rw)
    standin.job_delay = 0.2
    run = await rw.submit(spec=serial_spec([step("long", "sleep 30")]), backend="reana")
    await rw.wait(run["id"], ("running",), within=30)
    response = await rw.client.post(f"/runs/{run['id']}/cancel", headers=rw.headers())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert standin.workflows[run["backend_ids"]["workflow_id"]].status == "stopped"


async def test_reana_unreachable_is_a_503(
    make_settings: SettingsFactory, issuer: TestIssuer, datalake: PosixDatalake
) -> None:
    from vre_common.testing import free_port

    settings = make_settings(
        reana=ReanaSettings(
            servers={"down": ReanaServerSettings(url=f"http://127.0.0.1:{free_port()}")}
        )
    )
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        response = await client.put(
            "/credentials/reana", json={"token": GOOD}, headers=issuer.headers()
        )
        assert response.status_code == 503
        assert "Retry-After" in response.headers
        assert GOOD not in response.text
    await asyncio.sleep(0)
