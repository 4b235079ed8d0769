"""REANA answers slowly or with 500s: the workflows service's REANA backend.

The REANA stand-in (services/workflows/tests/support, every answer checked against REANA's
own OpenAPI spec) gets a fault layer in front: chosen calls wait longer than the client's
read timeout, or answer 500 as a broken REANA does. A submission then gets a 504 / 502
problem within the configured timeout and leaves no run behind; a running run whose status
polls fail is recorded as failed with the problem (the record survives); once REANA behaves,
the same submission runs to the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import serial_spec, serve, step
from services.workflows.tests.support.reana_standin import ReanaStandIn
from tests.faults.support import assert_problem, assert_within
from vre_common.settings import DatabaseSettings, HttpClientSettings
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import (
    ContainerSettings,
    LocalExecutorSettings,
    ReanaServerSettings,
    ReanaSettings,
    WorkflowsSettings,
)
from vre_workflows.main import create_app

READ_TIMEOUT = 1.0  # the REANA client's configured read timeout
POLL_OUTAGE = 1.5  # how long failing status polls are borne before the run is failed
TOKEN = "tok-alice-faults-0123456789"
TERMINAL = ("finished", "failed", "cancelled")


@dataclass
class Fault:
    """What the fault layer does to calls whose method and path match (None: nothing)."""

    mode: str | None = None  # "slow" or "500"
    method: str = "GET"
    path_suffix: str = ""
    hits: int = 0
    hit_at: float | None = None  # when the first faulty call arrived (time.monotonic())

    def matches(self, request: Request) -> bool:
        return (
            self.mode is not None
            and request.method == self.method
            and request.url.path.endswith(self.path_suffix)
        )


@dataclass
class Reana:
    client: httpx.AsyncClient
    standin: ReanaStandIn
    fault: Fault
    headers: dict[str, str]

    async def submit(self, name: str) -> httpx.Response:
        body = {"spec": serial_spec([step("hello", "echo hello")]), "backend": "reana"}
        return await self.client.post("/runs", json={**body, "name": name}, headers=self.headers)

    async def wait(self, run_id: str, statuses: tuple[str, ...] = TERMINAL) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            r = await self.client.get(f"/runs/{run_id}", headers=self.headers)
            assert r.status_code == 200, r.text
            run: dict[str, Any] = r.json()
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, f"run still {run['status']}"
            await asyncio.sleep(0.05)

    async def run_names(self) -> list[str]:
        listed = await self.client.get("/runs", headers=self.headers)
        assert listed.status_code == 200, listed.text
        return [run["name"] for run in listed.json()["items"]]


@pytest.fixture
async def reana(fault_issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[Reana]:
    standin = ReanaStandIn()
    standin.add_user(TOKEN, "alice")
    fault = Fault()

    @standin.app.middleware("http")
    async def faulty(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        if fault.matches(request):
            fault.hits += 1
            fault.hit_at = fault.hit_at or time.monotonic()
            if fault.mode == "500":
                return JSONResponse({"message": "Internal server error."}, status_code=500)
            await asyncio.sleep(3 * READ_TIMEOUT)
        return await call_next(request)

    async with serve(standin.app) as url:
        settings = WorkflowsSettings(
            data_dir=tmp_path / "wf",
            database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/workflows.db"),
            local=LocalExecutorSettings(containers=ContainerSettings(runtime="none")),
            reana=ReanaSettings(
                servers={
                    "test": ReanaServerSettings(
                        url=url,
                        http=HttpClientSettings(read_timeout=READ_TIMEOUT, connect_timeout=1.0),
                    )
                },
                poll_initial_seconds=0.05,
                poll_max_seconds=0.2,
                poll_outage_seconds=POLL_OUTAGE,
            ),
        )
        app = create_app(
            settings, validator=fault_issuer.validator(), datalake=PosixDatalake(tmp_path / "lake")
        )
        async with app_client(app, timeout=60) as client:
            headers = fault_issuer.headers("alice")
            registered = await client.put(
                "/credentials/reana", json={"token": TOKEN}, headers=headers
            )
            assert registered.status_code == 200, registered.text
            yield Reana(client=client, standin=standin, fault=fault, headers=headers)
    standin.close()
    assert standin.violations == [], standin.violations


@pytest.mark.parametrize(("mode", "status"), [("slow", 504), ("500", 502)])
async def test_submission_to_a_failing_reana(reana: Reana, mode: str, status: int) -> None:
    reana.fault.mode, reana.fault.method, reana.fault.path_suffix = mode, "POST", "/api/workflows"
    refused = await reana.submit("refused")
    assert reana.fault.hit_at is not None
    assert_within(reana.fault.hit_at, READ_TIMEOUT + 1.0, f"submission to a {mode} REANA")
    body = assert_problem(refused, status)
    assert "REANA" in str(body["detail"]) or "reana" in str(body["detail"])
    assert reana.fault.hits == 1
    assert TOKEN not in refused.text
    assert await reana.run_names() == []  # nothing half made

    reana.fault.mode = None
    accepted = await reana.submit("accepted")
    assert accepted.status_code == 201, accepted.text
    assert (await reana.wait(accepted.json()["id"]))["status"] == "finished"


@pytest.mark.parametrize(("mode", "status"), [("slow", 504), ("500", 502)])
async def test_status_polls_of_a_running_run_fail(reana: Reana, mode: str, status: int) -> None:
    reana.standin.job_delay = 1.0  # the run stays running while the polls fail
    first = await reana.submit("polled")
    assert first.status_code == 201, first.text
    run_id = first.json()["id"]
    await reana.wait(run_id, ("running", *TERMINAL))
    reana.fault.mode, reana.fault.method, reana.fault.path_suffix = mode, "GET", "/status"
    failed = await reana.wait(run_id)
    assert reana.fault.hit_at is not None
    # borne for POLL_OUTAGE (a short outage of REANA's API is not the run's failure), then
    # the run fails at the next poll
    bound = POLL_OUTAGE + READ_TIMEOUT + 1.0
    assert_within(reana.fault.hit_at, bound, f"run polled on a {mode} REANA")
    assert reana.fault.hits >= 2
    # the record survives, with the problem that ended it
    assert failed["status"] == "failed", failed
    assert failed["error"]["status"] == status, failed["error"]
    assert TOKEN not in str(failed["error"])

    reana.fault.mode = None
    reana.standin.job_delay = 0.0
    again = await reana.submit("after")
    assert again.status_code == 201, again.text
    assert (await reana.wait(again.json()["id"]))["status"] == "finished"
    assert sorted(await reana.run_names()) == ["after", "polled"]


async def test_a_run_outlives_a_short_outage_of_reanas_api(reana: Reana) -> None:
    reana.standin.job_delay = 1.0
    first = await reana.submit("blip")
    assert first.status_code == 201, first.text
    run_id = first.json()["id"]
    await reana.wait(run_id, ("running", *TERMINAL))
    reana.fault.mode, reana.fault.method, reana.fault.path_suffix = "500", "GET", "/status"
    deadline = time.monotonic() + 30
    while reana.fault.hits < 2:  # two polls failed in a row …
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    reana.fault.mode = None  # … then REANA answers again, well within POLL_OUTAGE
    done = await reana.wait(run_id)
    assert done["status"] == "finished", done
