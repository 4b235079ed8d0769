"""deploy/bin/vre-migrate: the one-shot migration step of docker-compose.yml and k8s/.

It reads the database URL from the service's own settings (environment), upgrades to the
newest revision, is idempotent, and `--check` tells an old schema from a current one — on
SQLite and on PostgreSQL, for every service that owns tables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

SCRIPT = REPO / "deploy" / "bin" / "vre-migrate"
PREFIX = {
    "gateway": "VRE_",
    "workflows": "VRE_WORKFLOWS_",
    "catalogue": "VRE_CATALOGUE_",
    "zenodo": "VRE_ZENODO_",
}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def migrate(service: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRE_")}
    env[f"{PREFIX[service]}DATABASE__URL"] = url
    return subprocess.run(
        [sys.executable, str(SCRIPT), service, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_cycle(service: str, url: str) -> None:
    before = migrate(service, url, "--check")
    assert before.returncode == 1, before.stdout + before.stderr
    for _ in range(2):  # idempotent: the second run changes nothing and succeeds
        result = migrate(service, url)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "upgraded to" in result.stdout  # printed after checking current == heads
    after = migrate(service, url, "--check")
    assert after.returncode == 0, after.stderr
    assert "is current" in after.stdout


def each_service(cycle: Callable[[str], None]) -> None:
    """Run one cycle per service, two at a time (each step is a fresh interpreter)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(cycle, sorted(PREFIX)))


def test_migrates_sqlite(tmp_path: Path) -> None:
    each_service(lambda s: check_cycle(s, f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}"))


@pytest.fixture(scope="module")
def pg_database() -> str:
    """A name prefix for fresh databases on the machine's PostgreSQL (skip if it is down)."""
    import psycopg

    try:
        psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({error})")
    return f"vre_deploy_{uuid.uuid4().hex[:10]}"


@pytest.mark.postgres
def test_migrates_postgresql_one_database_per_service(pg_database: str) -> None:
    import psycopg
    from psycopg import sql

    # as in docker-compose.yml: one database per service on one server
    def cycle(service: str) -> None:
        database = f"{pg_database}_{service}"[:63]
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        try:
            check_cycle(service, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )

    each_service(cycle)


def test_refuses_an_in_memory_database() -> None:
    result = migrate("catalogue", "sqlite+aiosqlite:///:memory:")
    assert result.returncode == 2
    assert "no database configured" in result.stderr
