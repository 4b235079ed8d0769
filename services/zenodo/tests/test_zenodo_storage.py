"""Stores on SQLite and on PostgreSQL (the session's private server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.zenodo.tests.conftest import ALICE_TOKEN, zenodo_settings
from services.zenodo.tests.support.standin import ZenodoStandIn
from vre_common.db import Database, utcnow
from vre_common.migrations import Migrations
from vre_common.postgres import PostgresServer
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_zenodo.main import create_app
from vre_zenodo.storage.credentials import CredentialStore
from vre_zenodo.storage.depositions import DepositionStore, NewDepositionFile
from vre_zenodo.storage.imports import ImportStore, NewImportFile


@pytest.fixture(scope="module")
def zenodo_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database for this module, dropped afterwards."""
    with postgres_server.fresh_database("vre_zenodo") as name:
        yield postgres_server.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database under test: a SQLite file, or the module's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/stores.db"
    url: str = request.getfixturevalue("zenodo_postgres_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    db = Database(DatabaseSettings(url=database_url))
    await Migrations("zenodo").upgrade(db.engine)
    yield db
    await db.dispose()


async def test_credential_store(database: Database) -> None:
    owner = f"https://iam.test/|{uuid.uuid4()}"
    async for session in database.session():
        store = CredentialStore(session)
        assert await store.get(owner) is None
        first = await store.put(owner, "cipher-1", "https://zenodo.org", None)
        assert first.created_at.tzinfo is not None
        second = await store.put(owner, "cipher-2", "https://zenodo.org", utcnow())
        assert second.token_encrypted == "cipher-2"
        assert second.created_at == first.created_at
        assert second.verified_at is not None
    async for session in database.session():
        store = CredentialStore(session)
        stored = await store.get(owner)
        assert stored is not None
        assert stored.token_encrypted == "cipher-2"
        assert await store.delete(owner) is True
        assert await store.delete(owner) is False


async def test_import_store(database: Database) -> None:
    owner = f"owner-{uuid.uuid4()}"
    async for session in database.session():
        store = ImportStore(session)
        job = await store.create(
            owner=owner,
            owner_name="alice",
            record_id=12345678901,
            doi="10.5281/zenodo.12345678901",
            title="A record",
            version="1",
            license="mit",
            scope="user.alice",
            dataset="zenodo-12345678901",
            rse=None,
            files=[
                NewImportFile(key="a b.txt", did_name="zenodo-1/a_b.txt", size=5 * 1024**3,
                              md5="0" * 32, url="http://z/a"),
                NewImportFile(key="c", did_name="zenodo-1/c", size=1, md5=None, url=None),
            ],
        )  # fmt: skip
        assert job.state == "queued"
        assert job.total_bytes == 5 * 1024**3 + 1
        await store.set_state(job.id, "running")
        await store.set_file(job.id, 0, state="transferring", bytes_done=0)
        await store.set_file(job.id, 0, bytes_done=4 * 1024**3)
        await store.set_file(job.id, 1, state="failed", error="md5 differs")
    async for session in database.session():
        store = ImportStore(session)
        loaded = await store.get(job.id, owner=owner)
        assert loaded is not None
        assert loaded.state == "running"
        assert loaded.started_at is not None
        assert loaded.bytes_done == 4 * 1024**3
        assert [(f.state, f.error) for f in loaded.files] == [
            ("transferring", None),
            ("failed", "md5 differs"),
        ]
        assert await store.get(job.id, owner="someone else") is None
        assert [j.id for j in await store.list_owned(owner)] == [job.id]
        assert await store.interrupt_active() >= 1
    async for session in database.session():
        loaded = await ImportStore(session).get(job.id)
        assert loaded is not None
        assert loaded.state == "interrupted"
        assert loaded.files[0].state == "failed"
        assert loaded.error is not None
        assert loaded.finished_at is not None


async def test_deposition_store(database: Database) -> None:
    owner = f"owner-{uuid.uuid4()}"
    async for session in database.session():
        store = DepositionStore(session)
        dep = await store.create(
            owner=owner,
            owner_name="alice",
            zenodo_id=7_000_000_001,
            bucket_url="http://z/api/files/b",
            html_url=None,
            title="T",
            metadata={"title": "T", "creators": [{"name": "Doe, Jane"}]},
            sources=["user.alice:ds"],
            run_id=None,
            software_id=None,
            previous_id=None,
            replace_files=False,
            files=[NewDepositionFile(scope="user.alice", name="x/y.txt", filename="y.txt",
                                     size=3, md5=None)],
        )  # fmt: skip
        assert dep.state == "uploading"
        assert dep.files[0].did == "user.alice:x/y.txt"
        await store.set_file(dep.id, 0, state="uploaded", bytes_done=3, md5="a" * 32)
        await store.set_state(dep.id, "ready")
        assert (await store.find_draft(owner, 7_000_000_001)) is not None
    async for session in database.session():
        store = DepositionStore(session)
        await store.mark_published(
            dep.id, doi="10.5281/zenodo.7000000001", record_id=7_000_000_001,
            concept_doi=None, html_url="http://z/records/7000000001",
        )  # fmt: skip
        await store.set_file(dep.id, 0, doi_written=True)
        await store.add_warnings(dep.id, ["w1", "w2"])
        await store.add_warnings(dep.id, ["w2", "w3"])
    async for session in database.session():
        store = DepositionStore(session)
        loaded = await store.get(dep.id, owner=owner)
        assert loaded is not None
        assert loaded.state == "published"
        assert loaded.published_at is not None
        assert loaded.doi == "10.5281/zenodo.7000000001"
        assert loaded.files[0].md5 == "a" * 32
        assert loaded.files[0].doi_written
        assert loaded.warnings == ["w1", "w2", "w3"]
        assert loaded.metadata["creators"] == [{"name": "Doe, Jane"}]
        assert [d.id for d in await store.list_owned(owner)] == [dep.id]
        assert "owner_key" not in loaded.public().model_dump()
        second = await store.create(
            owner=owner, owner_name="alice", zenodo_id=7_000_000_002, bucket_url=None,
            html_url=None, title=None, metadata={}, sources=[], run_id=None, software_id=None,
            previous_id=dep.id, replace_files=True, files=[],
        )  # fmt: skip
        assert await store.interrupt_active() >= 1
    async for session in database.session():
        again = await DepositionStore(session).get(second.id)
        assert again is not None
        assert again.state == "incomplete"
        assert again.error is not None
        assert "upload" in again.error["detail"]


async def test_the_app_on_this_database(
    database_url: str, tmp_path: Path, standin: ZenodoStandIn, issuer: TestIssuer
) -> None:
    settings = zenodo_settings(tmp_path, standin.base_url, issuer, database_url=database_url)
    async with app_client(create_app(settings, validator=issuer.validator())) as client:
        put = await client.put(
            "/credentials", json={"token": ALICE_TOKEN}, headers=issuer.headers()
        )
        assert put.status_code == 200, put.text
        assert (await client.get("/credentials", headers=issuer.headers())).json()["registered"]
        assert (await client.get("/depositions", headers=issuer.headers())).status_code == 200
        ready = await client.get("/readyz")
        assert ready.json()["dependencies"][0] == {
            "name": "database", "up": True, "reason": None, "optional": False,
        }  # fmt: skip
