"""Fixtures of the catalogue tests: each test runs on SQLite and on PostgreSQL.

PostgreSQL: the session's private server (``postgres_server``, vre_common.pytest_plugin); one
database per test session, created with a unique name and dropped at the end; emptied after
each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from services.catalogue.tests.support.helpers import CURATOR_GROUP, Users
from services.catalogue.tests.support.zenodo_records import ZenodoRecordsStandIn
from vre_catalogue.config import CatalogueSettings, ZenodoSourceSettings
from vre_catalogue.main import create_app
from vre_common.postgres import PostgresServer
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client

TABLES = (
    "version_person, software_identifier, environment, software_version, software_term, "
    "software, person, harvest_job"
)


@pytest.fixture(scope="session")
def catalogue_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    with postgres_server.fresh_database("vre_catalogue_test") as name:
        yield postgres_server.url(name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty catalogue database URL, on each dialect."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'catalogue.db'}"
        return
    url: str = request.getfixturevalue("catalogue_postgres_url")
    yield url
    sync = url.replace("+asyncpg", "")
    with psycopg.connect(sync, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('public.software')").fetchone()
        if exists and exists[0]:
            conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """Signs the tests' tokens."""
    return TestIssuer()


@pytest.fixture(scope="session")
async def zenodo_server() -> AsyncIterator[ZenodoRecordsStandIn]:
    """The Zenodo records stand-in, one server for the session."""
    standin = ZenodoRecordsStandIn()
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture
def zenodo(zenodo_server: ZenodoRecordsStandIn) -> Iterator[ZenodoRecordsStandIn]:
    """The stand-in, emptied for each test, with Zenodo's default limits."""
    zenodo_server.reset()
    zenodo_server.result_window = 10_000
    yield zenodo_server
    zenodo_server.reset()


@pytest.fixture
def settings(db_url: str, issuer: TestIssuer, zenodo: ZenodoRecordsStandIn) -> CatalogueSettings:
    """Catalogue settings on the test database, trusting the test issuer."""
    return CatalogueSettings(
        auth=issuer.auth_settings(),
        database=DatabaseSettings(url=db_url),
        curator_groups=[CURATOR_GROUP],
        zenodo=ZenodoSourceSettings(url=zenodo.base_url, settle_seconds=0),
    )


@pytest.fixture
def app(settings: CatalogueSettings, issuer: TestIssuer) -> FastAPI:
    """The catalogue app."""
    return create_app(settings, validator=issuer.validator())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app (lifespan running)."""
    async with app_client(app) as c:
        yield c


@pytest.fixture(scope="session")
def as_user(issuer: TestIssuer) -> Users:
    """``as_user("alice")`` → headers; also "bob", "carol", "admin", "curator"."""
    return Users(issuer)
