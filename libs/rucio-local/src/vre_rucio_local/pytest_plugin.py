"""pytest fixtures that run a real Rucio server (see ``recipes/rucio-local.md``).

Registered by the repository's root ``conftest.py``, next to ``vre_common.pytest_plugin``
whose session PostgreSQL server (``postgres_server``) holds Rucio's database.

- ``rucio_server`` (session): :class:`LocalRucio` on a fresh database of ``postgres_server``
  (schema ``rucio``, dropped afterwards), with two POSIX RSEs.
- ``rucio_server_pg`` (session): the same server (kept for tests that name the database).
- ``rucio_client_config`` (session): a rucio-clients config file for ``RUCIO_CONFIG``.
- ``rucio_admin_token`` (function): a fresh admin token from ``GET /auth/userpass``.

Tests using these fixtures get the ``rucio`` and ``postgres`` markers automatically.
The server is shared by the session: a test that stops it should use
``with rucio_server.outage():`` so that it is restarted on the same port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vre_common.postgres import PostgresServer
from vre_rucio_local.server import LocalRucio, LocalRucioConfig

TEST_ADMIN_USERNAME = "vre-test-admin"
TEST_ADMIN_PASSWORD = "vre-test-password"  # noqa: S105 - loopback test server only
_RUCIO_FIXTURES = {"rucio_server", "rucio_server_pg", "rucio_client_config", "rucio_admin_token"}


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this plugin adds (harmless if the project registers them too)."""
    config.addinivalue_line("markers", "rucio: needs a real Rucio server (started by a fixture)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use the Rucio fixtures, so ``-m 'not rucio'`` deselects them."""
    for item in items:
        if set(getattr(item, "fixturenames", ())) & _RUCIO_FIXTURES:
            item.add_marker(pytest.mark.rucio)
            item.add_marker(pytest.mark.postgres)


def config_for_tests(data_dir: Path, *, database_url: str | None = None) -> LocalRucioConfig:
    """The tests' configuration: fixed admin credentials, a daemon pass every second."""
    return LocalRucioConfig(
        data_dir=data_dir,
        database_url=database_url,
        admin_username=TEST_ADMIN_USERNAME,
        admin_password=TEST_ADMIN_PASSWORD,
        daemon_interval=1.0,
        daemon_log_level="INFO",  # full daemon logs in the tmp folder help a failing test
    )


@pytest.fixture(scope="session")
def rucio_server(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRucio]:
    """A running Rucio server with RSEs ``VRE-DISK-1`` and ``VRE-DISK-2``, on PostgreSQL.

    Exposes ``url``, ``admin_account``/``admin_username``/``admin_password``,
    ``rse_names``/``rse_prefixes``, ``run_daemons_once()``, ``stop()``/``start()``/
    ``outage()``, ``write_client_config()`` and ``admin_token()``.
    """
    with postgres_server.fresh_database("vre_rucio") as name:
        config = config_for_tests(
            tmp_path_factory.mktemp("rucio"),
            database_url=postgres_server.url(name, driver="psycopg"),
        )
        with LocalRucio(config) as server:
            yield server


@pytest.fixture(scope="session")
def rucio_server_pg(rucio_server: LocalRucio) -> LocalRucio:
    """``rucio_server`` (every Rucio of the tests runs on PostgreSQL now)."""
    return rucio_server


@pytest.fixture(scope="session")
def rucio_client_config(rucio_server: LocalRucio) -> Path:
    """Path of a rucio-clients config for ``rucio_server`` (set ``RUCIO_CONFIG`` to it)."""
    return rucio_server.write_client_config()


@pytest.fixture
def rucio_admin_token(rucio_server: LocalRucio) -> str:
    """A fresh admin token for ``rucio_server`` (header ``X-Rucio-Auth-Token``)."""
    return rucio_server.admin_token()
