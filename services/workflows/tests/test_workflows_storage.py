"""Run records on SQLite and PostgreSQL: stores keep everything; the app refuses an old schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from vre_common.crypto import TokenCipher
from vre_common.db import Database
from vre_common.migrations import Migrations, SchemaOutOfDateError
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_workflows.main import create_app
from vre_workflows.models import InputRef, OutputDestination, RunInput, RunOutput
from vre_workflows.storage.credentials import CredentialStore
from vre_workflows.storage.runs import NewRun, NewStep, RunStore


@asynccontextmanager
async def session_on(url: str) -> AsyncIterator[AsyncSession]:
    db = Database(DatabaseSettings(url=url))
    await Migrations("workflows").upgrade(db.engine)
    try:
        async with db.sessionmaker() as session:
            yield session
            await session.rollback()
    finally:
        await db.dispose()


def _new_run(run_id: str, owner: str, name: str = "demo") -> NewRun:
    return NewRun(
        id=run_id,
        owner=owner,
        owner_name="alice",
        name=name,
        backend="local",
        workflow_type="serial",
        spec={"workflow": {"type": "serial"}},
        spec_sha256="0" * 64,
        parameters={"n": 3, "label": "é"},
        images=["img:1"],
        steps=[
            NewStep(name="a", commands=["echo 3"], image="img:1", execution="host"),
            NewStep(name="b", commands=["true"]),
        ],
        inputs=[
            RunInput(
                kind="did",
                path="x.csv",
                requested="s:ds",
                did="s:x.csv",
                bytes=5,
                adler32="0000abcd",
                md5="f" * 32,
            )
        ],
        requested_inputs=[InputRef(did="s:ds")],
        destination=OutputDestination(scope="user.alice", rse_expression="LOCAL", lifetime=60),
        warnings=["w1"],
    )


async def test_run_store_round_trip(empty_db_url: str) -> None:
    async with session_on(empty_db_url) as session:
        store = RunStore(session)
        created = await store.create(_new_run("r1", "iss|alice"))
        assert created.status == "queued"
        assert created.created_at.tzinfo is not None
        await store.create(_new_run("r2", "iss|alice", name="other"))
        await store.create(_new_run("r3", "iss|bob"))

        assert await store.get("r1", owner="iss|bob") is None
        assert await store.set_status("r1", "running", only_from=["queued"])
        assert not await store.set_status("r1", "running", only_from=["queued"])
        await store.update_step("r1", 0, status="finished", exit_code=0)
        await store.finish_pending_steps("r1", "failed")
        await store.set_outputs(
            "r1", [RunOutput(path="o.txt", bytes=2, adler32="00000001", md5="a" * 32)]
        )
        await store.set_outputs(
            "r1",
            [RunOutput(path="o.txt", bytes=2, adler32="00000001", md5="a" * 32, did="s:o")],
        )
        await store.set_status("r1", "failed", error={"title": "x", "detail": "y"})
        await store.update_run("r1", backend_ids={"workflow_id": "w"})

        run = await store.get("r1", owner="iss|alice")
        assert run is not None
        assert [h.status for h in run.history] == ["queued", "running", "failed"]
        assert [s.status for s in run.steps] == ["finished", "skipped"]
        assert run.steps[0].commands == ["echo 3"]
        assert run.parameters == {"n": 3, "label": "é"}
        assert run.inputs[0].adler32 == "0000abcd"
        assert run.requested_inputs[0].did == "s:ds"
        assert run.outputs[0].did == "s:o"
        assert run.destination is not None
        assert run.destination.lifetime == 60
        assert run.error == {"title": "x", "detail": "y"}
        assert run.backend_ids == {"workflow_id": "w"}
        assert run.started_at is not None
        assert run.finished_at is not None
        assert run.progress.total == 2

        items, total = await store.list_runs("iss|alice")
        assert total == 2
        assert {i.id for i in items} == {"r1", "r2"}
        items, total = await store.list_runs("iss|alice", status=["failed"])
        assert [i.id for i in items] == ["r1"]
        items, total = await store.list_runs("iss|alice", name="other", page=1, size=1)
        assert [i.id for i in items] == ["r2"]

        assert sorted(await store.active_run_ids()) == [("r2", "local"), ("r3", "local")]
        await store.mark_interrupted("r2", "restart")
        interrupted = await store.get("r2")
        assert interrupted is not None
        assert interrupted.status == "interrupted"
        assert interrupted.history[-1].detail == "restart"


async def test_credentials_are_stored_encrypted(empty_db_url: str) -> None:
    from cryptography.fernet import Fernet

    cipher = TokenCipher(Fernet.generate_key())
    async with session_on(empty_db_url) as session:
        store = CredentialStore(session)
        await store.put("iss|alice", "cern", cipher.encrypt("s3cret-token"), "alice")
        await store.put("iss|alice", "cern", cipher.encrypt("new-token"), "alice")
        stored = await store.get("iss|alice", "cern")
        assert stored is not None
        assert "token" not in stored.token_encrypted
        assert cipher.decrypt(stored.token_encrypted) == "new-token"
        assert TokenCipher(Fernet.generate_key()).decrypt_or_none(stored.token_encrypted) is None
        assert [c.server for c in await store.list_all("iss|alice")] == ["cern"]
        assert await store.delete("iss|alice", "cern")
        assert not await store.delete("iss|alice", "cern")


async def test_the_app_refuses_an_old_schema(
    tmp_path: Path, make_settings: SettingsFactory, issuer: TestIssuer
) -> None:
    settings = make_settings(run_migrations=False)
    app = create_app(settings, validator=issuer.validator())
    with pytest.raises(SchemaOutOfDateError, match="vre-migrate workflows"):
        async with app_client(app):
            pass


async def test_a_run_on_postgresql(
    empty_db_url: str, make_settings: SettingsFactory, issuer: TestIssuer, datalake: PosixDatalake
) -> None:
    settings = make_settings(database=DatabaseSettings(url=empty_db_url))
    datalake.add_file("user.alice", "in.txt", b"payload\n")
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        wf = Harness(app=app, client=client, issuer=issuer, datalake=datalake)
        run = await wf.submit(
            spec=serial_spec([step("copy", "cp in.txt out.txt")], outputs=["out.txt"]),
            inputs=[{"did": "user.alice:in.txt"}],
            output={"scope": "user.alice"},
        )
        done = await wf.wait(run["id"])
        assert done["status"] == "finished", done
        assert done["outputs"][0]["did"].startswith("user.alice:")
