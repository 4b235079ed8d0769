"""Fixtures of the ivoa tests: a private DaCHS (TAP, cone search, SIA v2, RegTAP) and the
embedded VRE.

The VRE is a real gateway on a real port with the datalake (on the session's real Rucio),
workflows (local executor) and ivoa services mounted as the embedded mode mounts them; the
ivoa service is configured with DaCHS's TAP service, its cone search and SIA v2 service (and
an SIA v2 service that does not answer), and DaCHS's TAP as its RegTAP registry. Tests talk to
the gateway over HTTP with tokens of the test issuer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.ivoa.tests.support.dachs import DachsServer, dachs_available
from tests.support.embedded import embedded_settings
from vre_common.testing import ServerThread, TestIssuer, free_port
from vre_datalake.main import create_app as create_datalake
from vre_gateway import embedded
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway
from vre_ivoa.config import IvoaSettings
from vre_ivoa.main import create_app as create_ivoa
from vre_rucio_local import LocalRucio
from vre_workflows.main import create_app as create_workflows

TAP = "dachs-tap"
SCS = "dachs-cone"
SIA = "dachs-images"
DEAD_SIA = "nowhere-images"  # an SIA v2 service nothing listens at


@pytest.fixture(scope="session")
def dachs() -> Iterator[DachsServer]:
    """A private DaCHS with the synthetic catalogue and images (skipped only if DaCHS is not
    installed)."""
    missing = dachs_available()
    if missing:
        pytest.skip(missing)
    with DachsServer() as server:
        yield server


@dataclass
class Vre:
    """The running VRE: its URL, the token issuer, the DaCHS behind the ivoa service."""

    url: str
    issuer: TestIssuer
    dachs: DachsServer

    def headers(self, user: str = "alice") -> dict[str, str]:
        """Authorization header of a development user."""
        return self.issuer.headers(user)


def ivoa_settings(settings: GatewaySettings, dachs: DachsServer, **limits: Any) -> IvoaSettings:
    """The ivoa service as embedded mode builds it, with the two DaCHS services."""
    base = embedded._ivoa_settings(settings)
    return base.model_copy(
        update={
            "services": IvoaSettings.model_validate(
                {
                    "services": [
                        {
                            "name": TAP,
                            "type": "tap",
                            "url": dachs.tap_url,
                            "title": "DaCHS test TAP",
                            "ivoid": "ivo://dachs.test/tap",
                        },
                        {
                            "name": SCS,
                            "type": "scs",
                            "url": dachs.scs_url,
                            "title": "Synthetic catalogue cone search",
                        },
                        {
                            "name": SIA,
                            "type": "sia2",
                            "url": dachs.sia_url,
                            "title": "Synthetic images SIA v2",
                            "ivoid": "ivo://dachs.test/vreimg/q/sia2",
                        },
                        {
                            "name": DEAD_SIA,
                            "type": "sia2",
                            "url": f"http://127.0.0.1:{free_port()}/sia2/query",
                        },
                    ]
                }
            ).services,
            "registry": base.registry.model_copy(update={"url": dachs.tap_url}),
            "limits": base.limits.model_copy(update=limits),
            "provenance": base.provenance.model_copy(update={"relay_interval_seconds": 0.3}),
        }
    )


@pytest.fixture(scope="module")
def vre(
    rucio_server: LocalRucio, dachs: DachsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Vre]:
    """The gateway with datalake, workflows and ivoa mounted, served over real HTTP."""
    issuer = TestIssuer()
    validator = issuer.validator()
    folder: Path = tmp_path_factory.mktemp("vre-ivoa")
    settings = embedded_settings(folder, issuer, search={"sources": ["projects", "ivoa"]})
    factory = Factory(settings, validator=validator)  # first: the services get its link
    backends = embedded.Backends(rucio=rucio_server)
    datalake = embedded._datalake_settings(settings, backends)
    workflows = embedded._workflows_settings(settings)
    fast = {"relay_interval_seconds": 0.3}
    apps = {
        "datalake": create_datalake(
            datalake.model_copy(update={"provenance": datalake.provenance.model_copy(update=fast)}),
            link=factory.link,
        ),
        "workflows": create_workflows(
            workflows.model_copy(
                update={"provenance": workflows.provenance.model_copy(update=fast)}
            ),
            link=factory.link,
        ),
        "ivoa": create_ivoa(
            ivoa_settings(
                settings, dachs, max_rows=5000, sync_max_rows=1000, poll_interval_seconds=0.2
            ),
            link=factory.link,
        ),
    }
    gateway = create_gateway(settings, factory=factory, service_apps=apps)
    with ServerThread(gateway, port=settings.port) as server:
        yield Vre(url=server.url, issuer=issuer, dachs=dachs)


@pytest.fixture
async def http(vre: Vre) -> Any:
    """An HTTP client of the gateway."""
    async with httpx.AsyncClient(base_url=vre.url, timeout=120) as client:
        yield client


@pytest.fixture
def uid() -> str:
    """A short unique string for names of this test."""
    return uuid.uuid4().hex[:8]
