"""Fixtures of the datalake tests: a real Rucio (plugin), the app in-process and served."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.datalake.tests.datalake_support import ServedApp, make_settings, serve
from vre_common.testing import TestIssuer, app_client
from vre_datalake.config import DatalakeSettings
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio

# The Rucio fixtures (rucio_server, rucio_server_pg, rucio_client_config) come from
# vre_rucio_local.pytest_plugin, registered by the repository's root conftest.py
# (pytest accepts pytest_plugins only in the top-level conftest).


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """The token issuer every datalake test trusts."""
    return TestIssuer()


def settings_params(server: LocalRucio, issuer: TestIssuer, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``make_settings`` for ``server``."""
    return {
        "rucio_url": server.url,
        "username": server.admin_username,
        "password": server.admin_password,
        "issuer": issuer.issuer,
        "audience": issuer.audience,
        **overrides,
    }


@pytest.fixture(scope="session")
def dl_settings(rucio_server: LocalRucio, issuer: TestIssuer) -> DatalakeSettings:
    """Settings of the app under test on the session's Rucio."""
    return make_settings(**settings_params(rucio_server, issuer))


@pytest.fixture(scope="session")
async def client(
    dl_settings: DatalakeSettings, issuer: TestIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (small bodies only: ASGITransport buffers)."""
    app = create_app(dl_settings, validator=issuer.validator())
    async with app_client(app, timeout=60) as http:
        yield http


@pytest.fixture(scope="session")
def served(
    rucio_server: LocalRucio, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The app served by uvicorn in a subprocess (streaming, disconnects, RSS)."""
    log = tmp_path_factory.mktemp("served") / "server.log"
    app = serve(settings_params(rucio_server, issuer), issuer, log)
    yield app
    app.stop()


@pytest.fixture
def uid() -> str:
    """A short unique string for names of this test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def rse_root(rucio_server: LocalRucio) -> Path:
    """The folder of the default RSE."""
    return rucio_server.rse_prefixes["VRE-DISK-1"]
