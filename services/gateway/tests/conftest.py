"""Fixtures of the gateway tests: each database test runs on SQLite and on PostgreSQL.

PostgreSQL: the session's private server (``postgres_server``, vre_common.pytest_plugin); one
database per test session with a unique name, dropped at the end, emptied after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from services.gateway.tests.gateway_support import RecordingProvisioner, Users
from vre_common.postgres import PostgresServer
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_gateway.config import GatewaySettings, RateLimitSettings
from vre_gateway.main import create_app
from vre_gateway.storage.schema import GatewayBase


@pytest.fixture(scope="session")
def gw_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    with postgres_server.fresh_database("vre_gateway_test") as name:
        yield postgres_server.url(name)


def _empty(url: str) -> None:
    tables = ", ".join(t.name for t in GatewayBase.metadata.sorted_tables)
    with psycopg.connect(url.replace("+asyncpg", ""), autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('public.projects')").fetchone()
        if exists and exists[0]:
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def gw_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty gateway database URL, on each dialect."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        return
    url: str = request.getfixturevalue("gw_postgres_url")
    _empty(url)
    yield url
    _empty(url)


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """Signs the tests' tokens."""
    return TestIssuer()


@pytest.fixture(scope="session")
def as_user(issuer: TestIssuer) -> Users:
    """``as_user("alice")`` → Authorization headers."""
    return Users(issuer)


@pytest.fixture
def provisioner() -> RecordingProvisioner:
    """The recording stand-in of the scope provisioning port."""
    return RecordingProvisioner()


def gateway_settings(db_url: str, issuer: TestIssuer, **overrides: object) -> GatewaySettings:
    """Distributed-mode gateway settings on ``db_url`` (migrated at start)."""
    values: dict[str, object] = {
        "mode": "distributed",
        "auth": issuer.auth_settings(),
        "database": DatabaseSettings(url=db_url),
        "migrations": "upgrade",
        "rate_limit": RateLimitSettings(enabled=False),
        "search": {"sources": ["projects"]},
    }
    values.update(overrides)
    return GatewaySettings.model_validate(values)


@pytest.fixture
def settings(gw_db_url: str, issuer: TestIssuer) -> GatewaySettings:
    """Gateway settings on the test database."""
    return gateway_settings(gw_db_url, issuer)


@pytest.fixture
def app(
    settings: GatewaySettings, issuer: TestIssuer, provisioner: RecordingProvisioner
) -> FastAPI:
    """The gateway (no services mounted)."""
    return create_app(settings, validator=issuer.validator(), provisioner=provisioner)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway (lifespan running)."""
    async with app_client(app) as c:
        yield c
