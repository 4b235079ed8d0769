"""The embedded mode: every service in the gateway's process, real backends on loopback.

`vre up` calls :func:`start_backends` (it claims the data folder, starts a private
PostgreSQL server under it — one database per service that keeps one, and one for Rucio —
and a real Rucio server from its own environment, with two POSIX storage elements and its
daemons), builds the gateway's factory, then :func:`build_service_apps` with its link and
what those backends answer, then serves the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import structlog
from fastapi import FastAPI
from pydantic import SecretStr

from vre_catalogue.config import CatalogueSettings
from vre_common.auth import TokenValidator
from vre_common.link import GatewayLink
from vre_common.metrics import process_exited
from vre_common.postgres import PostgresServer
from vre_datalake.config import DatalakeSettings
from vre_gateway.config import SERVICES, GatewaySettings
from vre_ivoa.config import IvoaSettings
from vre_rucio_local import LocalRucio, LocalRucioConfig
from vre_workflows.config import WorkflowsSettings
from vre_zenodo.config import ZenodoSettings

if TYPE_CHECKING:
    from vre_common.settings import AuthSettings
    from vre_gateway.dev_issuer import DevIssuer

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

    def database(self, name: str) -> dict[str, Any]:
        """Settings of database ``name`` on the embedded PostgreSQL server. No check of a pooled
        connection before use: the server starts and stops with this process, and the check
        is three round trips for each session."""
        assert self.postgres is not None
        return {"url": self.postgres.url(name), "pre_ping": False}

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
) -> dict[str, Any]:
    """The database settings of service ``name``: its database on the embedded PostgreSQL
    server, or (backends without one, as some tests build them) a SQLite file."""
    if backends is not None and backends.postgres is not None:
        return backends.database(name)
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
    return _datalake_on(settings, rucio_description(backends.rucio), "datalake-outbox.sqlite")


def front_datalake_settings(
    settings: GatewaySettings, rucio: dict[str, Any], index: int
) -> DatalakeSettings:
    """The datalake of front process ``index`` (vre_gateway.front): the same Rucio, its own
    provenance outbox file (each outbox has one relay)."""
    return _datalake_on(settings, rucio, f"datalake-outbox-front{index}.sqlite")


def rucio_description(rucio: LocalRucio) -> dict[str, Any]:
    """What a datalake needs to know of the embedded Rucio (sent to the front processes)."""
    return {
        "url": rucio.url,
        "service_account": rucio.admin_account,
        "service_username": rucio.admin_username,
        "service_password": rucio.admin_password,
        "rse_names": list(rucio.rse_names),
    }


def _datalake_on(settings: GatewaySettings, rucio: dict[str, Any], outbox: str) -> DatalakeSettings:
    return DatalakeSettings(
        rucio={k: v for k, v in rucio.items() if k != "rse_names"},
        storage={"default_rse": rucio["rse_names"][0]},
        projects={"scope_prefix": settings.projects.scope_prefix},
        provenance={"outbox_path": settings.data / outbox},
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


def build_embedded(
    settings: GatewaySettings,
    *,
    validator: TokenValidator,
    backends: Backends,
    processes: int,
    dev_issuer: DevIssuer | None = None,
    auth: AuthSettings | None = None,
) -> tuple[FastAPI, dict[str, Any] | None]:
    """The embedded VRE's app (the primary's, when ``processes`` > 1): the gateway's factory,
    then every service mounted with its link, on ``backends``.

    With more than one process, also the settings the fronts start with (``auth``, default
    the settings', is what they validate tokens with), and the app's own rate limit off: the
    fronts apply it, the primary hears only them.
    """
    from vre_gateway.factory import Factory
    from vre_gateway.main import create_app

    front = None
    if processes > 1:
        front = settings_for_front(settings.model_copy(update={"auth": auth or settings.auth}))
        settings.rate_limit.enabled = False
    factory = Factory(settings, validator=validator)  # first: the services get its link
    app = create_app(
        settings,
        factory=factory,
        service_apps=build_service_apps(settings, factory.link, backends),
        dev_issuer=dev_issuer,
    )
    return app, front


def serve(
    app: FastAPI,
    settings: GatewaySettings,
    *,
    backends: Backends | None = None,
    front_settings: dict[str, Any] | None = None,
    processes: int = 1,
    log_level: str | None = None,
) -> None:
    """Serve the embedded VRE's ``app`` on ``settings.host:port`` until Ctrl-C or SIGTERM.

    ``processes`` > 1 (vre_gateway.front): ``app`` (the primary: build it with the rate limit
    off, the fronts apply it) serves a Unix socket in a private folder, and
    ``processes - 1`` front processes share the public socket, each started with
    ``front_settings`` (the gateway's settings as the primary's were, secrets included:
    :func:`settings_for_front`) and the embedded Rucio of ``backends``. A front that dies is
    started again; the fronts are stopped before this returns.
    """
    import uvicorn

    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }
    if log_level is not None:
        options["log_level"] = log_level
    if processes <= 1:
        uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, **options)).run()
        return
    if backends is None or backends.rucio is None or front_settings is None:
        raise ValueError("the front processes need the embedded Rucio and the settings")
    public = uvicorn.Config(app, host=settings.host, port=settings.port).bind_socket()
    public.listen(2048)  # connections wait in the backlog until a front takes them
    folder = Path(tempfile.mkdtemp(prefix="vre-"))  # 0700: only this user reaches the socket
    path = folder / "primary.sock"
    primary = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    primary.bind(str(path))
    # the fronts forward what their client said (scheme, address) in X-Forwarded-* headers
    config = uvicorn.Config(app, proxy_headers=True, forwarded_allow_ips="*", **options)
    server = uvicorn.Server(config)
    fronts = FrontProcesses(
        count=processes - 1,
        settings=front_settings,
        rucio=rucio_description(backends.rucio),
        public=public,
        primary_socket=str(path),
    )

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve(sockets=[primary]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - a flag, no event
            await asyncio.sleep(0.05)
        if server.started:
            fronts.start()
            watching = asyncio.ensure_future(fronts.watch(lambda: server.should_exit))
            serving.add_done_callback(lambda _: watching.cancel())
        await serving

    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())
    finally:
        fronts.stop()
        public.close()
        primary.close()
        shutil.rmtree(folder, ignore_errors=True)


def settings_for_front(settings: GatewaySettings) -> dict[str, Any]:
    """``settings`` as keyword arguments that rebuild them in a front process (secrets in
    clear: they travel on the front's standard input only)."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return str(value)

    return cast(dict[str, Any], json.loads(json.dumps(settings.model_dump(), default=plain)))


class FrontProcesses:
    """The front processes of the embedded mode (vre_gateway.front), started, restarted when
    one dies, and stopped."""

    RESTARTS = 5
    """Deaths within a minute after which no front is started again (and `vre up` stops)."""

    def __init__(
        self,
        *,
        count: int,
        settings: dict[str, Any],
        rucio: dict[str, Any],
        public: socket.socket,
        primary_socket: str,
    ) -> None:
        self._count = count
        self._settings = settings
        self._rucio = rucio
        self._public = public
        self._primary_socket = primary_socket
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._deaths: list[float] = []

    def start(self) -> None:
        """Start every front."""
        for index in range(1, self._count + 1):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        from vre_gateway.front import FrontConfig

        fd = self._public.fileno()
        config = FrontConfig(
            settings=self._settings,
            rucio=self._rucio,
            primary_socket=self._primary_socket,
            fd=fd,
            index=index,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "vre_gateway.front"], stdin=subprocess.PIPE, pass_fds=(fd,)
        )
        assert process.stdin is not None
        process.stdin.write(config.model_dump_json().encode())
        process.stdin.close()
        self._processes[index] = process

    async def watch(self, stopping: Callable[[], bool]) -> None:
        """Start a front again when it dies (unless the VRE is stopping); stop the VRE
        (SIGTERM to this process) when they keep dying."""
        log = structlog.get_logger("vre.embedded")
        while True:
            await asyncio.sleep(0.5)
            for index, process in list(self._processes.items()):
                code = process.poll()
                if code is None or stopping():
                    continue
                process_exited(process.pid)
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < 60] + [now]
                if len(self._deaths) > self.RESTARTS:
                    log.error("front_processes_keep_dying", exit_code=code)
                    del self._processes[index]
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                log.warning("front_process_died", index=index, exit_code=code)
                self._spawn(index)

    def stop(self) -> None:
        """SIGTERM to every front, then wait (at most 10 s each, killed after)."""
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process_exited(process.pid)
        self._processes.clear()
