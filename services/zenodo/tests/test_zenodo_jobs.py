"""Background jobs: start after commit, per-file progress, shutdown and restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from services.zenodo.tests.conftest import AppClient, zenodo_settings
from services.zenodo.tests.support.standin import ZenodoStandIn
from services.zenodo.tests.test_zenodo_e2e import SCOPE
from vre_common.clients.datalake import DatalakeClient
from vre_common.db import Database
from vre_common.errors import NotFoundError
from vre_common.jobs import JobSupervisor
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_zenodo.main import create_app
from vre_zenodo.services.jobs import counted
from vre_zenodo.storage.depositions import DepositionStore
from vre_zenodo.storage.imports import ImportStore, NewImportFile
from vre_zenodo.storage.schema import ZenodoBase


async def test_a_job_starts_only_when_its_request_commits() -> None:
    db = Database(DatabaseSettings(url="sqlite+aiosqlite:///:memory:"))
    async with db.engine.begin() as connection:
        await connection.run_sync(ZenodoBase.metadata.create_all)
    supervisor = JobSupervisor(2, service="zenodo")
    ran: list[str] = []

    async def job(name: str) -> None:
        ran.append(name)

    async def failing_request() -> None:
        async with db.transaction() as session:
            supervisor.start_after_commit(session, "rolled-back", lambda: job("rolled-back"))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    async for session in db.session():
        supervisor.start_after_commit(session, "committed", lambda: job("committed"))
        await asyncio.sleep(0.05)
        assert ran == []  # not before the commit
    await supervisor.join("committed")
    await asyncio.sleep(0)
    assert ran == ["committed"]
    await supervisor.shutdown()
    await db.dispose()


async def test_shutdown_cancels_jobs_and_records_it() -> None:
    supervisor = JobSupervisor(1, service="zenodo")
    started = asyncio.Event()
    records: list[str] = []

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    async def cancelled() -> None:
        records.append("interrupted")

    supervisor.start("a", slow, cancelled)
    supervisor.start("b", slow, cancelled)  # queued behind "a"
    await started.wait()
    assert supervisor.running("a")
    assert supervisor.running("b")
    await supervisor.shutdown()
    assert records == ["interrupted", "interrupted"]
    assert not supervisor.running("a")
    supervisor.start("c", slow)  # refused after shutdown
    assert not supervisor.running("c")


async def test_counted_reports_progress() -> None:
    seen: list[int] = []

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"x" * 10

    async def progress(done: int) -> None:
        seen.append(done)

    assert [c async for c in counted(chunks(), progress, 0.0)] == [b"x" * 10] * 4
    assert seen == [10, 20, 30, 40]


async def test_import_progress_per_file(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    issuer: TestIssuer,
    uid: str,
) -> None:
    size = 3 * 1024 * 1024
    rid = fresh_standin.add_record({"big.bin": os.urandom(size)}, title=f"Progress {uid}")
    fresh_standin.download_delay = 0.01  # ~1.5 s for the file: progress can be watched
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        started = await client.post(
            "/imports", json={"record_id": rid, "scope": SCOPE}, headers=alice
        )
        location = started.headers["Location"]
        seen: set[tuple[str, int]] = set()
        while True:
            job = (await client.get(location, headers=alice)).json()
            seen.add((job["files"][0]["state"], job["files"][0]["bytes_done"]))
            if job["state"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.02)
        assert job["state"] == "completed", job
        partial = {done for state, done in seen if state == "transferring" and 0 < done < size}
        assert partial, seen
        assert ("done", size) in seen


async def test_shutdown_during_import_then_restart(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    issuer: TestIssuer,
    uid: str,
) -> None:
    size = 4 * 1024 * 1024
    rid = fresh_standin.add_record({"slow.bin": os.urandom(size)}, title=f"Slow {uid}")
    fresh_standin.download_delay = 0.05  # ~3 s for the file
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        started = await client.post(
            "/imports", json={"record_id": rid, "scope": SCOPE}, headers=alice
        )
        location = started.headers["Location"]
        while True:
            job = (await client.get(location, headers=alice)).json()
            if job["files"][0]["bytes_done"] > 0:
                break
            await asyncio.sleep(0.02)
    # the app stopped with the import running; it was cancelled and recorded as interrupted
    fresh_standin.download_delay = 0.0
    async with zenodo_app(datalake_url) as client:
        job = (await client.get(location, headers=alice)).json()
        assert job["state"] == "interrupted", job
        assert job["files"][0]["state"] == "failed"
        assert "start the import again" in job["error"]["detail"]
    await asyncio.sleep(0.5)
    async with DatalakeClient(datalake_url, issuer.token("alice")) as lake:
        with pytest.raises(NotFoundError):  # the aborted transfer registered nothing
            await lake.get_did(SCOPE, f"zenodo-{rid}/slow.bin")


async def test_jobs_left_running_by_a_dead_process_are_interrupted_at_start(
    tmp_path: Path, standin: ZenodoStandIn, issuer: TestIssuer
) -> None:
    settings = zenodo_settings(tmp_path, standin.base_url, issuer)
    app = create_app(settings, validator=issuer.validator())
    async with app_client(app):
        factory = app.state.factory
        async with factory.unit() as session:
            job = await ImportStore(session).create(
                owner=issuer.issuer + "|" + issuer.subject("alice"), owner_name="alice",
                record_id=1, doi=None, title="t", version=None, license=None, scope=SCOPE,
                dataset="zenodo-1", rse=None,
                files=[NewImportFile(key="k", did_name="zenodo-1/k", size=1, md5=None, url=None)],
            )  # fmt: skip
            await ImportStore(session).set_state(job.id, "running")
            dep = await DepositionStore(session).create(
                owner=issuer.issuer + "|" + issuer.subject("alice"), owner_name="alice",
                zenodo_id=1, bucket_url=None, html_url=None, title=None, metadata={},
                sources=[], run_id=None, software_id=None, previous_id=None,
                replace_files=False, files=[],
            )  # fmt: skip
        # the process "dies": nothing is cancelled (the rows are not tasks of this app)
    async with app_client(create_app(settings, validator=issuer.validator())) as client:
        imported = (await client.get(f"/imports/{job.id}", headers=issuer.headers())).json()
        assert imported["state"] == "interrupted"
        deposition = (await client.get(f"/depositions/{dep.id}", headers=issuer.headers())).json()
        assert deposition["state"] == "incomplete"
        assert "/depositions/{id}/upload" in deposition["error"]["detail"]
