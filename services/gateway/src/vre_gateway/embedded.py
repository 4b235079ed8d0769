"""The embedded mode: every service in the gateway's process, real backends on loopback.

`vre up` calls :func:`start_backends` (a real Rucio server from its own environment, with
two POSIX storage elements and its daemons), then :func:`build_service_apps` with what those
backends answer, then serves the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from vre_catalogue.config import CatalogueSettings
from vre_common.auth import TokenValidator
from vre_datalake.config import DatalakeSettings
from vre_gateway.config import SERVICES, GatewaySettings
from vre_ivoa.config import IvoaSettings
from vre_rucio_local import LocalRucio, LocalRucioConfig
from vre_workflows.config import WorkflowsSettings
from vre_zenodo.config import ZenodoSettings


@dataclass
class Backends:
    """Handles on the backends the embedded mode started (stopped in reverse order)."""

    rucio: LocalRucio | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop everything that was started (daemons first, then the server)."""
        if self.rucio is not None:
            self.rucio.close()


def build_service_apps(
    settings: GatewaySettings, validator: TokenValidator, backends: Backends | None = None
) -> dict[str, FastAPI]:
    """Create the four service apps with settings derived from the gateway's data folder.

    Without ``backends`` (building the OpenAPI document) every service gets its defaults:
    nothing is written and nothing is contacted.
    """
    from vre_catalogue.main import create_app as catalogue_app
    from vre_datalake.main import create_app as datalake_app
    from vre_ivoa.main import create_app as ivoa_app
    from vre_workflows.main import create_app as workflows_app
    from vre_zenodo.main import create_app as zenodo_app

    return {
        "datalake": datalake_app(_datalake_settings(settings, backends), validator=validator),
        "workflows": workflows_app(
            _workflows_settings(settings) if backends else None, validator=validator
        ),
        "catalogue": catalogue_app(
            CatalogueSettings(database=_sqlite(settings, "catalogue")) if backends else None,
            validator=validator,
        ),
        "zenodo": zenodo_app(_zenodo_settings(settings) if backends else None, validator=validator),
        "ivoa": ivoa_app(_ivoa_settings(settings) if backends else None, validator=validator),
    }


def _sqlite(settings: GatewaySettings, name: str) -> dict[str, str]:
    """A service's own SQLite database in the data folder (embedded mode)."""
    return {"url": f"sqlite+aiosqlite:///{settings.data / (name + '.db')}"}


def _links(settings: GatewaySettings) -> dict[str, dict[str, str]]:
    """How one embedded service reaches the others: over HTTP through the gateway, since
    an in-process ASGI call would buffer whole bodies."""
    return {name: {"url": f"{settings.base_url}/{name}"} for name in SERVICES}


def _workflows_settings(settings: GatewaySettings) -> WorkflowsSettings:
    # Step images cannot be pulled in the embedded mode (only locally built ones run): a step
    # whose image is missing runs on the host, and the run records that it did.
    return WorkflowsSettings(
        database=_sqlite(settings, "workflows"),
        data_dir=settings.data / "workflows",
        datalake=_links(settings)["datalake"],
        local={"allow_host_execution": True},
    )


def _zenodo_settings(settings: GatewaySettings) -> ZenodoSettings:
    links = _links(settings)
    # Zenodo's own URL and token settings still come from VRE_ZENODO_… (e.g. a sandbox).
    return ZenodoSettings(
        database=_sqlite(settings, "zenodo"),
        data_dir=settings.data / "zenodo",
        datalake=links["datalake"],
        workflows=links["workflows"],
        catalogue=links["catalogue"],
    )


def _ivoa_settings(settings: GatewaySettings) -> IvoaSettings:
    # The VO services themselves come from VRE_IVOA_SERVICES (and VRE_IVOA_REGISTRY__URL).
    return IvoaSettings(
        database=_sqlite(settings, "ivoa"),
        datalake=_links(settings)["datalake"],
        projects={"scope_prefix": settings.projects.scope_prefix},
    )


def _datalake_settings(settings: GatewaySettings, backends: Backends | None) -> DatalakeSettings:
    if backends is None or backends.rucio is None:
        return DatalakeSettings()
    rucio = backends.rucio
    return DatalakeSettings(
        rucio={
            "url": rucio.url,
            "service_account": rucio.admin_account,
            "service_username": rucio.admin_username,
            "service_password": rucio.admin_password,
        },
        storage={"default_rse": rucio.rse_names[0]},
        database=_sqlite(settings, "datalake"),
        projects={"scope_prefix": settings.projects.scope_prefix},
        provenance={"outbox_path": settings.data / "datalake-outbox.sqlite"},
    )


def start_backends(settings: GatewaySettings) -> Backends:
    """Start a real Rucio server (own venv, SQLite, two POSIX RSEs) and its daemon loop."""
    rucio = LocalRucio(LocalRucioConfig(data_dir=settings.data / "rucio"))
    try:
        rucio.up()
        rucio.daemons.start()
    except BaseException:
        rucio.close()
        raise
    return Backends(
        rucio=rucio,
        info={"rucio": rucio.url, "rses": {n: str(p) for n, p in rucio.rse_prefixes.items()}},
    )
