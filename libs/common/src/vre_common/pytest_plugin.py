"""pytest fixtures for PostgreSQL: one private server per test session, fresh databases from it.

Registered by the repository's root ``conftest.py``. The server comes from the same wheel as
the embedded VRE's (:mod:`vre_common.postgres`), in a temporary folder, without fsync; the
machine's own PostgreSQL, if it has one, is never used.

- ``postgres_server`` (session): the :class:`~vre_common.postgres.PostgresServer`; its
  ``fresh_database(prefix)`` gives a database for any scope, ``url(name)``/``dsn(name)``
  the addresses.
- ``postgres_url`` (function): an asyncpg URL of a new, empty database, dropped afterwards.
- ``empty_db_url`` (function, on each dialect): a SQLite file's URL, then ``postgres_url``.

Tests using them get the ``postgres`` marker.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vre_common.postgres import PostgresServer

_FIXTURES = {"postgres_server", "postgres_url"}


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (harmless when the project registers it too)."""
    config.addinivalue_line("markers", "postgres: uses the session's private PostgreSQL server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use a PostgreSQL fixture, directly or through another fixture."""
    for item in items:
        if set(getattr(item, "fixturenames", ())) & _FIXTURES:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session (stopped and deleted at the end)."""
    # Not under pytest's tmp_path: its folders are private to this user, and as root the
    # server runs as another user that must reach its files.
    root = Path(tempfile.mkdtemp(prefix="vre-test-pg-"))
    server = PostgresServer(root, durable=False)
    try:
        server.start()
        yield server
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """``postgresql+asyncpg://…`` of a new, empty database for this test (dropped after)."""
    with postgres_server.fresh_database() as name:
        yield postgres_server.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, on each dialect: a SQLite file, then a new
    PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
