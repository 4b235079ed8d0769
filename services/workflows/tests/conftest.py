"""Fixtures of the workflows tests: the app on SQLite files, a POSIX Data Lake, a test issuer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness
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
