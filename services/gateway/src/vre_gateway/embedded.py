"""The embedded mode: every service in the gateway's process, real backends on loopback.

`vre up` calls :func:`start_backends` (a real Rucio server from its own environment, with
two POSIX storage elements and its daemons), then :func:`build_service_apps` with what those
backends answer, then serves the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from vre_common.auth import TokenValidator

from vre_gateway.config import GatewaySettings


@dataclass
class Backends:
    """Handles on the backends the embedded mode started (stopped in reverse order)."""

    rucio: Any | None = None
    daemons: Any | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop everything that was started."""
        if self.daemons is not None:
            self.daemons.stop()
        if self.rucio is not None:
            self.rucio.stop()


def build_service_apps(
    settings: GatewaySettings, validator: TokenValidator, backends: Backends | None = None
) -> dict[str, FastAPI]:
    """Create the four service apps with settings derived from the gateway's data folder."""
    from vre_catalogue.main import create_app as catalogue_app
    from vre_datalake.main import create_app as datalake_app
    from vre_workflows.main import create_app as workflows_app
    from vre_zenodo.main import create_app as zenodo_app

    return {
        "datalake": datalake_app(validator=validator),
        "workflows": workflows_app(validator=validator),
        "catalogue": catalogue_app(validator=validator),
        "zenodo": zenodo_app(validator=validator),
    }


def start_backends(settings: GatewaySettings) -> Backends:
    """Start the embedded backends (filled in as each backend lands)."""
    return Backends()
