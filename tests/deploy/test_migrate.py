"""deploy/bin/vre-migrate: the one-shot migration step of docker-compose.yml and k8s/.

It reads the database URL from the service's own settings (environment), upgrades to the
newest revision, is idempotent, and `--check` tells an old schema from a current one — on
SQLite and on PostgreSQL, for every service that owns tables. The cycles run the script's
``main`` in-process (one import); one run goes through the executable itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.conftest import REPO

SCRIPT = REPO / "deploy" / "bin" / "vre-migrate"
PREFIX = {
    "gateway": "VRE_",
    "datalake": "VRE_DATALAKE_",
    "workflows": "VRE_WORKFLOWS_",
    "catalogue": "VRE_CATALOGUE_",
    "zenodo": "VRE_ZENODO_",
}


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """The script, loaded as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("vre_migrate_script", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def cycle(
    script: ModuleType,
    service: str,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key in list(os.environ):
        if key.startswith("VRE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv(f"{PREFIX[service]}DATABASE__URL", url)
    assert script.main([service, "--check"]) == 1
    assert "code needs" in capsys.readouterr().err
    for _ in range(2):  # idempotent: the second run changes nothing and succeeds
        assert script.main([service]) == 0
        assert "upgraded to" in capsys.readouterr().out  # printed after current == heads
    assert script.main([service, "--check"]) == 0
    assert "is current" in capsys.readouterr().out


@pytest.mark.parametrize("service", sorted(PREFIX))
def test_migrates_sqlite(
    service: str,
    script: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cycle(script, service, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", monkeypatch, capsys)


@pytest.mark.postgres
@pytest.mark.parametrize("service", sorted(PREFIX))
def test_migrates_postgresql(
    service: str,
    script: ModuleType,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # as in docker-compose.yml and k8s/: asyncpg URLs, one database per service
    cycle(script, service, postgres_url, monkeypatch, capsys)


def test_the_executable_reads_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRE_")}
    env["VRE_ZENODO_DATABASE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'zenodo.db'}"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "zenodo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "zenodo database upgraded to" in result.stdout
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


def test_refuses_an_in_memory_database(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VRE_CATALOGUE_DATABASE__URL", "sqlite+aiosqlite:///:memory:")
    assert script.main(["catalogue"]) == 2
    assert "no database configured" in capsys.readouterr().err
