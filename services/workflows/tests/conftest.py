"""Fixtures of the workflows tests: the app on SQLite files, a POSIX Data Lake, a test issuer."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness
from services.workflows.tests.support.registry import (
    Registry,
    missing_tools,
    push_tiny_image,
    running_registry,
)
from services.workflows.tests.support.slurm import SlurmCluster, missing_binaries, running_cluster
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import ContainerSettings, LocalExecutorSettings, WorkflowsSettings
from vre_workflows.main import create_app

SettingsFactory = Callable[..., WorkflowsSettings]


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
def datalake(tmp_path: Path) -> PosixDatalake:
    return PosixDatalake(tmp_path / "lake")


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    def factory(**overrides: Any) -> WorkflowsSettings:
        local = {
            "allow_host_execution": True,
            "kill_grace_seconds": 1.0,
            "max_concurrent_runs": 2,
            "containers": ContainerSettings(runtime="none"),
        }
        local.update(overrides.pop("local", {}))
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database": DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/workflows.db"),
            "log_poll_seconds": 0.05,
            "local": LocalExecutorSettings(**local),
        }
        values.update(overrides)
        return WorkflowsSettings(**values)

    return factory


@pytest.fixture
async def wf(
    make_settings: SettingsFactory, issuer: TestIssuer, datalake: PosixDatalake
) -> AsyncIterator[Harness]:
    app = create_app(make_settings(), validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        yield Harness(app=app, client=client, issuer=issuer, datalake=datalake)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """One real one-node Slurm cluster for the session (munged + slurmctld + slurmd)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)}): apt-get install slurm-wlm munge"
        )
    if os.geteuid() != 0:
        pytest.skip("the one-node Slurm cluster runs its daemons as root (SlurmUser=root)")
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, str]]:
    missing = missing_tools()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install docker-registry podman)")
    root = tmp_path_factory.mktemp("registry")
    with running_registry(root) as served:
        probe = served.podman("info", check=False)
        if probe.returncode:
            pytest.skip(f"podman cannot run here: {probe.stderr[-300:]}")
        try:
            image = push_tiny_image(served, "vre/tiny:1", root)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"podman cannot build or push here: {exc.stderr[-300:]}")
        yield served, image
        served.forget(image)
