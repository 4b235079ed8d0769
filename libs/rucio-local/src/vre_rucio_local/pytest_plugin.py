"""pytest fixtures that run a real Rucio server (see ``recipes/rucio-local.md``).

Register with ``pytest_plugins = ["vre_rucio_local.pytest_plugin"]``.

- ``rucio_server`` (session): SQLite-backed :class:`LocalRucio` with two POSIX RSEs.
- ``rucio_server_pg`` (session): the same on a fresh database of the machine's PostgreSQL
  (127.0.0.1:5432, user ``postgres``), dropped afterwards; skipped when it is down.
- ``rucio_client_config`` (session): a rucio-clients config file for ``RUCIO_CONFIG``.
- ``rucio_admin_token`` (function): a fresh admin token from ``GET /auth/userpass``.

Tests using these fixtures get the ``rucio`` (and ``postgres``) markers automatically.
The server is shared by the session: a test that stops it should use
``with rucio_server.outage():`` so that it is restarted on the same port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vre_rucio_local.server import LocalRucio, LocalRucioConfig

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
TEST_ADMIN_USERNAME = "vre-test-admin"
TEST_ADMIN_PASSWORD = "vre-test-password"  # noqa: S105 - loopback test server only
_PG_FIXTURES = {"rucio_server_pg"}
_RUCIO_FIXTURES = {"rucio_server", "rucio_client_config", "rucio_admin_token", *_PG_FIXTURES}


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this plugin adds (harmless if the project registers them too)."""
    config.addinivalue_line("markers", "rucio: needs a real Rucio server (started by a fixture)")
    config.addinivalue_line("markers", "postgres: needs the machine's PostgreSQL server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use the Rucio fixtures, so ``-m 'not rucio'`` deselects them."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _RUCIO_FIXTURES:
            item.add_marker(pytest.mark.rucio)
        if names & _PG_FIXTURES:
            item.add_marker(pytest.mark.postgres)


def _config(
    data_dir: Path, *, database_url: str | None = None, database_schema: str | None = None
) -> LocalRucioConfig:
    return LocalRucioConfig(
        data_dir=data_dir,
        database_url=database_url,
        database_schema=database_schema,
        admin_username=TEST_ADMIN_USERNAME,
        admin_password=TEST_ADMIN_PASSWORD,
        daemon_interval=1.0,
        daemon_log_level="INFO",  # full daemon logs in the tmp folder help a failing test
    )


@pytest.fixture(scope="session")
def rucio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRucio]:
    """A running SQLite-backed Rucio server with RSEs ``VRE-DISK-1`` and ``VRE-DISK-2``.

    Exposes ``url``, ``admin_account``/``admin_username``/``admin_password``,
    ``rse_names``/``rse_prefixes``, ``run_daemons_once()``, ``stop()``/``start()``/
    ``outage()``, ``write_client_config()`` and ``admin_token()``.
    """
    with LocalRucio(_config(tmp_path_factory.mktemp("rucio"))) as server:
        yield server


@pytest.fixture(scope="session")
def rucio_client_config(rucio_server: LocalRucio) -> Path:
    """Path of a rucio-clients config for ``rucio_server`` (set ``RUCIO_CONFIG`` to it)."""
    return rucio_server.write_client_config()


@pytest.fixture
def rucio_admin_token(rucio_server: LocalRucio) -> str:
    """A fresh admin token for ``rucio_server`` (header ``X-Rucio-Auth-Token``)."""
    return rucio_server.admin_token()


@pytest.fixture(scope="session")
def rucio_server_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRucio]:
    """Like ``rucio_server``, on a fresh PostgreSQL database (schema ``rucio``)."""
    import psycopg
    from psycopg import sql

    try:
        admin = psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres",
            connect_timeout=3, autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as error:
        pytest.skip(
            f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} as {PG_USER} ({error}); start "
            "it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    database = f"vre_rucio_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        try:
            config = _config(
                tmp_path_factory.mktemp("rucio-pg"),
                database_url=f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}",
                database_schema="rucio",
            )
            with LocalRucio(config) as server:
                yield server
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
