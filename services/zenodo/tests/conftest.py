"""Fixtures of the zenodo tests: the Zenodo stand-in, fakes of the workflows and catalogue
services, the real datalake service on the real Rucio fixture, and the app under test.

Every server runs on a real uvicorn on 127.0.0.1 (in its own thread and event loop); the
zenodo app itself is called in-process (its answers are small JSON) while it talks to the
others over HTTP. One TestIssuer validator is shared by the zenodo and datalake apps.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.zenodo.tests.support.fakes import VreServicesFake
from services.zenodo.tests.support.servers import ThreadedServer
from services.zenodo.tests.support.standin import ZenodoStandIn, served_standin
from vre_common.auth import TokenValidator
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_zenodo.backends.zenodo import ZenodoBackend
from vre_zenodo.config import (
    JobSettings,
    ServiceLinkSettings,
    ZenodoApiSettings,
    ZenodoSettings,
)
from vre_zenodo.main import create_app

ALICE_TOKEN = "zenodo-token-alice-0123456789"
BOB_TOKEN = "zenodo-token-bob-0123456789"
DEFAULT_RSE = "VRE-DISK-1"


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """The token issuer every app of these tests trusts."""
    return TestIssuer()


@pytest.fixture(scope="session")
def validator(issuer: TestIssuer) -> TokenValidator:
    """One validator shared by the zenodo and datalake apps."""
    return issuer.validator()


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenodoStandIn]:
    """The Zenodo stand-in on a real server; alice and bob have personal tokens."""
    tokens = {ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}
    with served_standin(tmp_path_factory.mktemp("zenodo-standin"), tokens) as zenodo:
        yield zenodo


@pytest.fixture
def fresh_standin(standin: ZenodoStandIn) -> Iterator[ZenodoStandIn]:
    """The stand-in with its switches and counters reset around the test."""
    standin.put_counts.clear()
    yield standin
    standin.newversion_shape = "new"
    standin.download_delay = 0.0
    standin._fail_puts.clear()
    standin.put_counts.clear()


@pytest.fixture(scope="session")
def vre_fakes() -> Iterator[tuple[VreServicesFake, str, str]]:
    """Fakes of the workflows and catalogue services: (state, workflows URL, catalogue URL)."""
    fakes = VreServicesFake()
    workflows = ThreadedServer(fakes.workflows, lifespan="off").start()
    catalogue = ThreadedServer(fakes.catalogue, lifespan="off").start()
    yield fakes, workflows.url, catalogue.url
    workflows.stop()
    catalogue.stop()


@pytest.fixture
async def backend(standin: ZenodoStandIn) -> AsyncIterator[ZenodoBackend]:
    """The Zenodo backend on the stand-in."""
    zenodo = ZenodoBackend(ZenodoApiSettings(url=standin.base_url))
    yield zenodo
    await zenodo.aclose()


@pytest.fixture
def uid() -> str:
    """A short unique string for names of this test."""
    return uuid.uuid4().hex[:10]


def zenodo_settings(
    tmp: Path,
    zenodo_url: str,
    issuer: TestIssuer,
    *,
    datalake_url: str | None = None,
    workflows_url: str | None = None,
    catalogue_url: str | None = None,
    database_url: str | None = None,
    **overrides: Any,
) -> ZenodoSettings:
    """Settings of a zenodo app for a test (no environment involved)."""
    return ZenodoSettings(
        auth=issuer.auth_settings(),
        database=DatabaseSettings(url=database_url or f"sqlite+aiosqlite:///{tmp}/zenodo.db"),
        data_dir=tmp / "data",
        zenodo=ZenodoApiSettings(url=zenodo_url),
        datalake=ServiceLinkSettings(url=datalake_url),
        workflows=ServiceLinkSettings(url=workflows_url),
        catalogue=ServiceLinkSettings(url=catalogue_url),
        jobs=JobSettings(progress_interval_seconds=0.0),
        **overrides,
    )


AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def zenodo_app(
    tmp_path: Path,
    standin: ZenodoStandIn,
    issuer: TestIssuer,
    validator: TokenValidator,
    vre_fakes: tuple[VreServicesFake, str, str],
) -> AppClient:
    """Build the zenodo app (datalake URL optional) and call it in-process."""
    _, workflows_url, catalogue_url = vre_fakes

    @asynccontextmanager
    async def build(
        datalake_url: str | None = None, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = zenodo_settings(
            tmp_path,
            standin.base_url,
            issuer,
            datalake_url=datalake_url,
            workflows_url=workflows_url,
            catalogue_url=catalogue_url,
            **overrides,
        )
        app = create_app(settings, validator=validator)
        async with app_client(app, timeout=120) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return build


# ----------------------------------------------------------------------------- real datalake


def datalake_app_settings(rucio: Any, issuer: TestIssuer) -> Any:
    """Settings of the real datalake service on a test Rucio."""
    from vre_datalake.config import AccountSettings, DatalakeSettings, RucioSettings
    from vre_datalake.config import StorageSettings as DatalakeStorage

    return DatalakeSettings(
        auth=issuer.auth_settings(),
        rucio=RucioSettings(
            url=rucio.url,
            service_account="root",
            service_username=rucio.admin_username,
            service_password=SecretStr(rucio.admin_password),
            retry_after_seconds=3,
        ),
        accounts=AccountSettings(default_limit_bytes=4 * 1024**3),
        storage=DatalakeStorage(default_rse=DEFAULT_RSE, fsync=False),
    )


def _serve_datalake(rucio: Any, issuer: TestIssuer, validator: TokenValidator) -> ThreadedServer:
    from vre_datalake.main import create_app as create_datalake_app

    app = create_datalake_app(datalake_app_settings(rucio, issuer), validator=validator)
    return ThreadedServer(app, lifespan="on").start()


@pytest.fixture(scope="session")
def datalake_url(rucio_server: Any, issuer: TestIssuer, validator: TokenValidator) -> Iterator[str]:
    """The real datalake service on the SQLite Rucio fixture, served by uvicorn."""
    server = _serve_datalake(rucio_server, issuer, validator)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def datalake_pg_url(
    rucio_server_pg: Any, issuer: TestIssuer, validator: TokenValidator
) -> Iterator[str]:
    """The real datalake service on the PostgreSQL Rucio fixture (custom metadata keys)."""
    server = _serve_datalake(rucio_server_pg, issuer, validator)
    yield server.url
    server.stop()
