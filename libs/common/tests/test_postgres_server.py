"""The private PostgreSQL server of vre_common.postgres: one owner per folder, data kept across
restarts, a server left by a crashed owner taken over, stopped on request."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vre_common.postgres import PostgresInUseError, PostgresServer


@pytest.fixture
def folder() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root the server runs as another user, which must reach
    # its folder while other pytest sessions make their own folders private.
    root = Path(tempfile.mkdtemp(prefix="vre-pg-test-"))
    yield root / "pg"
    shutil.rmtree(root, ignore_errors=True)


def _rows(server: PostgresServer, database: str) -> list[str]:
    with psycopg.connect(server.dsn(database)) as conn:
        return [row[0] for row in conn.execute("SELECT note FROM notes ORDER BY note")]


def test_one_owner_and_data_kept_across_restarts(folder: Path) -> None:
    first = PostgresServer(folder, durable=False)
    first.start()
    try:
        with pytest.raises(PostgresInUseError, match=f"in use by pid {os.getpid()}"):
            PostgresServer(folder).start()
        database = first.create_database("kept")
        with psycopg.connect(first.dsn(database), autocommit=True) as conn:
            conn.execute("CREATE TABLE notes (note text)")
            conn.execute("INSERT INTO notes VALUES ('written before the restart')")
        first.stop()
        assert not first.is_running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(first.dsn(database), connect_timeout=2)
    finally:
        first.close()

    again = PostgresServer(folder, durable=False)
    with again:
        assert again.create_database("kept") == "kept"  # exists already: kept as it is
        assert _rows(again, "kept") == ["written before the restart"]
    assert not again.is_running


def test_a_server_left_by_a_crashed_owner_is_taken_over(folder: Path) -> None:
    crashed = PostgresServer(folder, durable=False)
    crashed.start()
    crashed._release()  # the owner is gone (its lock with it) but its server still runs
    assert crashed.is_running
    heir = PostgresServer(folder, durable=False, settings={"application_name": "heir"})
    with heir, psycopg.connect(heir.dsn()) as conn:
        assert conn.execute("SHOW application_name").fetchone() == ("heir",)
    assert not heir.is_running


def test_urls_reach_only_the_private_socket(folder: Path) -> None:
    server = PostgresServer(folder, durable=False)
    with server:
        url = server.url("postgres")
        assert url.startswith("postgresql+asyncpg://postgres@/postgres?host=")
        assert str(server.socket_dir) in url
        with server.fresh_database("scratch") as name:
            assert name.startswith("scratch_")
            with psycopg.connect(server.dsn(name)) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == (name,)
        with psycopg.connect(server.dsn()) as conn:
            left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'scratch_%'")
            assert left.fetchone() == (0,)  # dropped after the block
