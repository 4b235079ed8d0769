"""The fault suite: each backend fails in the middle of a request (issue 9, "Faults").

Every case checks the right 5xx problem within the configured timeout, that nothing is left
half registered, that no run record is lost, and that the same request works once the
backend is back:

- Rucio stopped during an upload (five moments), a listing (before it and while it streams)
  and a workflow's output registration: test_rucio_faults.py;
- PostgreSQL stopped while a request waits inside it: test_postgres_faults.py;
- the OpenID provider frozen, warm and cold key caches: test_oidc_faults.py (a provider that
  is gone: tests/test_oidc_integration.py);
- REANA slow or answering 500 at submission and while a run is polled: test_reana_faults.py;
- 60 uploads across a Rucio restart (``make soak`` runs 1,000): test_soak_short.py.

Here: a Rucio server of the suite's own behind a fault proxy (never the session's
``rucio_server``, which other tests use), and the datalake served over real HTTP in the
test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.datalake.tests.datalake_support import make_settings
from services.workflows.tests.support.helpers import serve
from tests.faults.support import FaultProxy
from vre_common.testing import TestIssuer
from vre_datalake.config import DatalakeSettings
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio, LocalRucioConfig

# The bounds the cases assert against: the datalake's Rucio client timeouts.
RUCIO_CONNECT_TIMEOUT = 2.0
RUCIO_READ_TIMEOUT = 5.0


@pytest.fixture(scope="session")
def fault_issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="session")
def fault_rucio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRucio]:
    """A Rucio server only the fault suite uses (stopped and started by the cases)."""
    config = LocalRucioConfig(data_dir=tmp_path_factory.mktemp("fault-rucio"), log_level="WARNING")
    with LocalRucio(config) as server:
        yield server


@dataclass
class Lake:
    """The datalake service on the fault suite's Rucio, reached through ``proxy``."""

    url: str
    rucio: LocalRucio
    proxy: FaultProxy
    settings: DatalakeSettings
    issuer: TestIssuer

    @property
    def rse_root(self) -> Path:
        root: Path = self.rucio.rse_prefixes["VRE-DISK-1"]
        return root

    def headers(self, user: str = "alice") -> dict[str, str]:
        headers: dict[str, str] = self.issuer.headers(user)
        return headers

    _stopping: asyncio.Future[None] | None = None

    async def stop_rucio(self) -> None:
        """Stop Rucio (SIGINT to gunicorn, as an operator or a crash would)."""
        self._stopping = asyncio.ensure_future(asyncio.to_thread(self.rucio.stop))
        await asyncio.shield(self._stopping)

    async def start_rucio(self) -> None:
        """Start Rucio again on the same port (once the stop has finished)."""
        if self._stopping is not None:
            await self._stopping
        await asyncio.to_thread(self.rucio.start)


@pytest.fixture
async def lake(fault_rucio: LocalRucio, fault_issuer: TestIssuer) -> AsyncIterator[Lake]:
    """The datalake served over HTTP (real streaming) with Rucio behind a fault proxy.

    Whatever a case did, Rucio runs again afterwards.
    """
    fault_rucio.start()
    proxy = FaultProxy(upstream_port=fault_rucio.port)
    await proxy.start()
    base = make_settings(
        rucio_url=proxy.url,
        username=fault_rucio.admin_username,
        password=fault_rucio.admin_password,
        issuer=fault_issuer.issuer,
        audience=fault_issuer.audience,
    )
    settings = base.model_copy(
        update={
            "rucio": base.rucio.model_copy(
                update={
                    "connect_timeout": RUCIO_CONNECT_TIMEOUT,
                    "read_timeout": RUCIO_READ_TIMEOUT,
                }
            )
        }
    )
    app = create_app(settings, validator=fault_issuer.validator())
    handle = Lake(url="", rucio=fault_rucio, proxy=proxy, settings=settings, issuer=fault_issuer)
    try:
        async with serve(app) as url:
            handle.url = url
            yield handle
    finally:
        await proxy.stop()
        await handle.start_rucio()
