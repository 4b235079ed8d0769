"""The whole VRE on a real loopback port, as the embedded mode builds it, for the cross-service
suites (fuzzing, bad input, HEAD, search, walkthroughs): the five services mounted in the
gateway, a real Rucio (the session's ``rucio_server``), the Zenodo stand-in, and one configured
TAP service that is down (its routes answer 503 problems)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.zenodo.tests.support.standin import ZenodoStandIn
from tests.support.embedded import embedded_settings
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.main import create_app as create_catalogue
from vre_common.testing import ServerThread, TestIssuer, free_port
from vre_datalake.main import create_app as create_datalake
from vre_gateway import embedded
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway
from vre_ivoa.config import VoServiceConfig
from vre_ivoa.main import create_app as create_ivoa
from vre_rucio_local import LocalRucio
from vre_workflows.main import create_app as create_workflows
from vre_zenodo.config import ZenodoApiSettings
from vre_zenodo.main import create_app as create_zenodo

ZENODO_TOKENS = {"zenodo-alice-0123456789": "alice"}
"""Tokens the Zenodo stand-in accepts in these suites (token → user)."""

ALL_SEARCH_SOURCES = ["projects", "datalake", "catalogue", "workflows", "zenodo", "ivoa"]


@contextmanager
def running_vre(
    folder: Path,
    rucio: LocalRucio,
    zenodo: ZenodoStandIn,
    issuer: TestIssuer | None = None,
    **overrides: Any,
) -> Iterator[tuple[str, TestIssuer]]:
    """Serve the VRE; yields its base URL and the issuer whose tokens it accepts.

    ``overrides`` are gateway settings (e.g. ``search={"sources": [...]}``).
    """
    issuer = issuer or TestIssuer()
    validator = issuer.validator()
    settings = embedded_settings(folder, issuer, **overrides)
    factory = Factory(settings, validator=validator)  # first: the services get its link
    backends = embedded.Backends(rucio=rucio)
    zenodo_settings = embedded._zenodo_settings(settings)
    apps = {
        "datalake": create_datalake(
            embedded._datalake_settings(settings, backends), link=factory.link
        ),
        "workflows": create_workflows(embedded._workflows_settings(settings), link=factory.link),
        "catalogue": create_catalogue(
            CatalogueSettings(database=embedded._sqlite(settings, "catalogue")),
            link=factory.link,
        ),
        "zenodo": create_zenodo(
            zenodo_settings.model_copy(update={"zenodo": ZenodoApiSettings(url=zenodo.base_url)}),
            link=factory.link,
        ),
        "ivoa": create_ivoa(
            embedded._ivoa_settings(settings).model_copy(
                update={
                    "services": [
                        VoServiceConfig(
                            name="archive", type="tap", url=f"http://127.0.0.1:{free_port()}/tap"
                        )
                    ]
                }
            ),
            link=factory.link,
        ),
    }
    gateway = create_gateway(settings, factory=factory, service_apps=apps)
    with ServerThread(gateway, port=settings.port) as server:
        yield server.url, issuer
