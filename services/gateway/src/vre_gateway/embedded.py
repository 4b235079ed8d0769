"""The embedded mode: every service in the gateway's process, real backends on loopback.

`vre up` calls :func:`start_backends` (it claims the data folder, starts a private
PostgreSQL server under it — one database per service that keeps one, and one for Rucio —
and a real Rucio server from its own environment, with two POSIX storage elements and its
daemons), builds the gateway's factory, then :func:`build_service_apps` with its link and
what those backends answer, then serves the gateway.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI

from vre_catalogue.config import CatalogueSettings
from vre_common.link import GatewayLink
from vre_common.postgres import PostgresServer
from vre_datalake.config import DatalakeSettings
from vre_gateway.config import SERVICES, GatewaySettings
from vre_ivoa.config import IvoaSettings
from vre_rucio_local import LocalRucio, LocalRucioConfig
from vre_workflows.config import WorkflowsSettings
from vre_zenodo.config import ZenodoSettings

OWNER_FILE = ".vre-up.lock"
# The services with a database of their own on the embedded PostgreSQL server (the datalake's
# provenance outbox is a file here: provenance.outbox=file).
DATABASES = ("gateway", "workflows", "catalogue", "zenodo", "ivoa")
RUCIO_DATABASE = "rucio"
# Files of the SQLite-based embedded mode before the PostgreSQL server (not read any more).
_OLD_SQLITE_FILES = ("gateway.db", "workflows.db", "catalogue.db", "rucio/rucio.db")


class DataFolderInUseError(RuntimeError):
    """Another `vre up` runs on this data folder (a command-line error, not an API one)."""


@dataclass
class Backends:
    """Handles on the backends the embedded mode started (stopped in reverse order).

    ``postgres`` holds every service's database; tests that build a ``Backends`` with a
    Rucio server only get SQLite files in the data folder instead (:func:`service_database`).
    """

    rucio: LocalRucio | None = None
    postgres: PostgresServer | None = None
    info: dict[str, Any] = field(default_factory=dict)
    owner: IO[str] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop everything that was started: Rucio's daemons and server, then PostgreSQL,
        then give the data folder up."""
        try:
            if self.rucio is not None:
                self.rucio.close()
        finally:
            try:
                if self.postgres is not None:
                    self.postgres.close()
            finally:
                if self.owner is not None:
                    self.owner.close()  # closing the file releases its lock
                    self.owner = None


def build_service_apps(
    settings: GatewaySettings, link: GatewayLink, backends: Backends | None = None
) -> dict[str, FastAPI]:
    """Create the service apps, each linked to the gateway by ``link`` (its factory's), with
    settings derived from the gateway's data folder.

    Without ``backends`` (building the OpenAPI document) every service gets its defaults:
    nothing is written and nothing is contacted.
    """
    from vre_catalogue.main import create_app as catalogue_app
    from vre_datalake.main import create_app as datalake_app
    from vre_ivoa.main import create_app as ivoa_app
    from vre_workflows.main import create_app as workflows_app
    from vre_zenodo.main import create_app as zenodo_app

    catalogue = (
        CatalogueSettings(database=service_database(settings, backends, "catalogue"))
        if backends
        else None
    )
    return {
        "datalake": datalake_app(_datalake_settings(settings, backends), link=link),
        "workflows": workflows_app(
            _workflows_settings(settings, backends) if backends else None, link=link
        ),
        "catalogue": catalogue_app(catalogue, link=link),
        "zenodo": zenodo_app(_zenodo_settings(settings, backends) if backends else None, link=link),
        "ivoa": ivoa_app(_ivoa_settings(settings, backends) if backends else None, link=link),
    }


def service_database(
    settings: GatewaySettings, backends: Backends | None, name: str
) -> dict[str, str]:
    """The database settings of service ``name``: its database on the embedded PostgreSQL
    server, or (backends without one, as some tests build them) a SQLite file."""
    if backends is not None and backends.postgres is not None:
        return {"url": backends.postgres.url(name)}
    return _sqlite(settings, name)


def _sqlite(settings: GatewaySettings, name: str) -> dict[str, str]:
    """A service's own SQLite database in the data folder (tests that bring no PostgreSQL)."""
    return {"url": f"sqlite+aiosqlite:///{settings.data / (name + '.db')}"}


def _links(settings: GatewaySettings) -> dict[str, dict[str, str]]:
    """How one embedded service reaches the others: over HTTP through the gateway, since
    an in-process ASGI call would buffer whole bodies."""
    return {name: {"url": f"{settings.base_url}/{name}"} for name in SERVICES}


def _workflows_settings(
    settings: GatewaySettings, backends: Backends | None = None
) -> WorkflowsSettings:
    # Step images cannot be pulled in the embedded mode (only locally built ones run): a step
    # whose image is missing runs on the host, and the run records that it did.
    return WorkflowsSettings(
        database=service_database(settings, backends, "workflows"),
        data_dir=settings.data / "workflows",
        datalake=_links(settings)["datalake"],
        local={"allow_host_execution": True},
        # one user on their own machine: REANA's loaders may run their workflow's code here
        # (in the sandbox when bubblewrap is installed, as in the deployments)
        spec_loading="sandbox" if shutil.which("bwrap") else "host",
    )


def _zenodo_settings(settings: GatewaySettings, backends: Backends | None = None) -> ZenodoSettings:
    links = _links(settings)
    # Zenodo's own URL and token settings still come from VRE_ZENODO_… (e.g. a sandbox).
    return ZenodoSettings(
        database=service_database(settings, backends, "zenodo"),
        data_dir=settings.data / "zenodo",
        datalake=links["datalake"],
        workflows=links["workflows"],
        catalogue=links["catalogue"],
    )


def _ivoa_settings(settings: GatewaySettings, backends: Backends | None = None) -> IvoaSettings:
    # The VO services themselves come from VRE_IVOA_SERVICES (and VRE_IVOA_REGISTRY__URL).
    return IvoaSettings(
        database=service_database(settings, backends, "ivoa"),
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
        projects={"scope_prefix": settings.projects.scope_prefix},
        provenance={"outbox_path": settings.data / "datalake-outbox.sqlite"},
    )


def start_backends(settings: GatewaySettings) -> Backends:
    """Claim the data folder, start PostgreSQL (a database per service and one for Rucio),
    then a real Rucio server on it (own venv, two POSIX RSEs) and its daemon loop.

    Raises :class:`DataFolderInUseError` when another `vre up` runs on the same folder.
    """
    settings.data.mkdir(parents=True, exist_ok=True)
    backends = Backends(owner=claim_data_folder(settings.data, settings.base_url))
    try:
        backends.postgres = PostgresServer(settings.data / "postgres")
        backends.postgres.start()
        for name in (*DATABASES, RUCIO_DATABASE):
            backends.postgres.create_database(name)
        backends.rucio = LocalRucio(
            LocalRucioConfig(
                data_dir=settings.data / "rucio",
                database_url=backends.postgres.url(RUCIO_DATABASE, driver="psycopg"),
            )
        )
        backends.rucio.up()
        backends.rucio.daemons.start()
    except BaseException:
        backends.stop()
        raise
    rucio = backends.rucio
    backends.info = {
        "rucio": rucio.url,
        "rses": {n: str(p) for n, p in rucio.rse_prefixes.items()},
        "postgres": str(backends.postgres.socket_dir),
    }
    return backends


def claim_data_folder(folder: Path, url: str) -> IO[str]:
    """Hold an exclusive lock on ``folder`` for as long as the returned file stays open.

    The file says who holds it (pid and URL), for the message a second `vre up` gets.
    """
    handle = (folder / OWNER_FILE).open("a+")
    holder: dict[str, Any] = {}
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        with contextlib.suppress(ValueError):
            holder = json.loads(handle.read() or "{}")
        handle.close()
        who = f"pid {holder.get('pid')}, {holder.get('url')}" if holder else "another process"
        raise DataFolderInUseError(
            f"the data folder {folder} is in use by another `vre up` ({who}); stop it first, "
            "or start this one on another folder (--data or VRE_DATA)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "url": url}))
    handle.flush()
    return handle


def old_sqlite_files(folder: Path) -> list[Path]:
    """Databases an earlier, SQLite-based embedded mode left in ``folder`` (not read now)."""
    return [folder / name for name in _OLD_SQLITE_FILES if (folder / name).is_file()]
