"""A real Rucio server on loopback, run by gunicorn from its own virtual environment.

The server package caps its dependencies, so it lives in ``.venv-rucio`` (built from
``requirements/rucio-server.txt``) and runs as a subprocess; this module only needs the
standard library and httpx. See ``recipes/rucio-local.md`` for the facts it relies on.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from vre_common.postgres import PostgresServer
from vre_rucio_local import _process
from vre_rucio_local.cache import RucioCache
from vre_rucio_local.daemons import DaemonPassReport, RucioDaemons
from vre_rucio_local.errors import RucioBootstrapError, RucioStartError, RucioVenvError
from vre_rucio_local.setup import (
    WEBDAV_IMPL,
    PosixRse,
    RucioAdmin,
    add_webdav_rse,
    get_auth_token,
    provision_posix_rses,
)

REQUIREMENTS_FILE = Path("requirements") / "rucio-server.txt"
SCRIPTS_DIR = Path(__file__).with_name("scripts")
OWN_DATABASE = "rucio"  # its name on a private PostgreSQL server of the instance's own
ADMIN_ACCOUNT = "root"  # the account Rucio's bootstrap creates
DEFAULT_RSES = ("VRE-DISK-1", "VRE-DISK-2")
# Rucio's application, less a per-request cost (scripts/wsgi.py says which).
WSGI_APP = "wsgi:application"
# Options Rucio reads on every write and, not finding them in rucio.cfg, looks up in its
# config table: a database query each time where no memcached runs beside it. Rucio's own
# defaults, written in the file (a value set in the config table is not read for these).
PINNED_OPTIONS: dict[str, dict[str, str]] = {
    "hermes": {"services_list": "activemq,email"},
    "conveyor": {"use_preparer": "False"},
    "rules": {"apply_rule_max_partition_size": "2000"},
}
_STRIPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RUCIO_HOME", "RUCIO_CONFIG")

_ALEMBIC_LOGGING = """\
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %%(levelname)-5.5s [%%(name)s] %%(message)s
datefmt = %%H:%%M:%%S
"""


def find_repo_root(start: Path | None = None) -> Path | None:
    """Return the nearest folder above ``start`` holding ``requirements/rucio-server.txt``."""
    here = (start or Path(__file__)).resolve()
    for folder in (here, *here.parents):
        if (folder / REQUIREMENTS_FILE).is_file():
            return folder
    return None


def _require_repo_root() -> Path:
    root = find_repo_root()
    if root is None:
        raise RucioVenvError(
            f"cannot find {REQUIREMENTS_FILE} above {Path(__file__).parent}: "
            "pass LocalRucioConfig(venv_dir=...) pointing at a Rucio server environment"
        )
    return root


@dataclass(frozen=True, kw_only=True)
class LocalRucioConfig:
    """How to run one embedded Rucio server.

    ``database_url`` is a PostgreSQL database for Rucio (``postgresql+psycopg://…``, e.g.
    :meth:`vre_common.postgres.PostgresServer.url` with ``driver="psycopg"``); without one
    (tests, benchmarks), the server gets a throw-away PostgreSQL server of its own
    (:class:`vre_common.postgres.PostgresServer`) in a temporary folder, started with it and
    deleted at :meth:`LocalRucio.close` — not under ``data_dir``, which may be one of
    pytest's folders that another session makes private to root while the database server
    (another user, when run as root) still needs to reach it. Rucio's tables
    live in the schema ``database_schema``. ``port=0`` picks a free port at first start and
    keeps it for later restarts. ``admin_password=None`` generates one, kept in
    ``data_dir/admin-password``.

    ``workers`` × ``threads`` is how many requests gunicorn serves at once; each worker's
    connection pool holds ``threads`` connections (plus ``pool_overflow`` when a request
    needs a second one), so the database needs ``workers × (threads + pool_overflow)``
    connections for the server, plus a few for the daemons.
    """

    data_dir: Path
    venv_dir: Path | None = None
    database_url: str | None = None
    database_schema: str = "rucio"
    admin_username: str = "vre-admin"
    admin_password: str | None = None
    admin_email: str = "root@localhost"
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 2
    threads: int = 8
    pool_overflow: int = 4
    start_timeout: float = 60.0
    log_level: str = "WARNING"  # INFO: a line per rule created
    daemon_log_level: str = "WARNING"  # Rucio's daemons log ≈ 30 INFO lines per pass
    posix_rses: tuple[str, ...] = DEFAULT_RSES
    transfer_schemes: tuple[str, ...] = ("file", "https")
    daemon_interval: float = 5.0
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Timings:
    """Seconds spent in the last bootstrap, start and daemon pass (None if not run)."""

    bootstrap: float | None = None
    start: float | None = None
    daemon_pass: float | None = None


class LocalRucio:
    """One Rucio server: its configuration, database, gunicorn process and daemons.

    ``up()`` (or ``with LocalRucio(config) as rucio:``) builds the virtual environment if
    needed, writes ``rucio.cfg`` and ``alembic.ini``, creates the schema and root account,
    starts gunicorn and provisions the POSIX RSEs. ``stop()``/``start()`` can be used
    in between, and restart on the same port.
    """

    def __init__(self, config: LocalRucioConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir.resolve()
        self.venv_dir = (config.venv_dir or _require_repo_root() / ".venv-rucio").absolute()
        self.log_dir = self.data_dir / "logs"
        self.storage_dir = self.data_dir / "storage"
        self.config_path = self.data_dir / "rucio.cfg"
        self.daemons_config_path = self.data_dir / "rucio-daemons.cfg"
        self.alembic_path = self.data_dir / "alembic.ini"
        self.server_log = self.log_dir / "rucio-server.log"
        self.bootstrap_log = self.log_dir / "rucio-bootstrap.log"
        self._postgres: PostgresServer | None = None
        if config.database_url is None:
            folder = Path(tempfile.mkdtemp(prefix="vre-rucio-pg-"))
            self._postgres = PostgresServer(folder, durable=False)
        self.database_url = config.database_url or self._own_database_url()
        self.admin_account = ADMIN_ACCOUNT
        self.admin_username = config.admin_username
        self.admin_password = config.admin_password or self._stored_password()
        self.rse_prefixes: dict[str, Path] = {
            name: self.storage_dir / name for name in config.posix_rses
        }
        self.timings = Timings()
        self.version: str | None = None
        self._port: int | None = config.port or None
        self._process: subprocess.Popen[bytes] | None = None
        self._daemons: RucioDaemons | None = None
        self.cache = RucioCache(self.data_dir / "memcached.sock", self.log_dir / "memcached.log")

    # --- identity ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (chosen at first start when configured as 0)."""
        if self._port is None:
            raise RucioStartError("the Rucio server has not been started yet: no port")
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the REST API, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.config.host}:{self.port}"

    def _own_database_url(self) -> str:
        assert self._postgres is not None
        return self._postgres.url(OWN_DATABASE, driver="psycopg")

    @property
    def python(self) -> Path:
        """The server environment's interpreter."""
        return self.venv_dir / "bin" / "python"

    @property
    def rse_names(self) -> tuple[str, ...]:
        """Names of the POSIX RSEs this instance provisions."""
        return tuple(self.rse_prefixes)

    @property
    def is_running(self) -> bool:
        """True while the gunicorn master process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the gunicorn master process, if running."""
        return self._process.pid if self.is_running and self._process else None

    def _stored_password(self) -> str:
        path = self.data_dir / "admin-password"
        if path.is_file():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        return password

    # --- environment ---------------------------------------------------------------------

    def ensure_venv(self) -> None:
        """Build or refresh the server environment when its stamp is missing or stale.

        Same commands as ``make .venv-rucio/.stamp``: ``python3.11 -m venv`` then
        ``uv pip sync --require-hashes requirements/rucio-server.txt``.
        """
        stamp = self.venv_dir / ".stamp"
        root = find_repo_root()
        requirements = root / REQUIREMENTS_FILE if root else None
        lock = self.venv_dir / ".vre.lock"
        if requirements is None:
            if not (self.venv_dir / "bin" / "gunicorn").is_file():
                raise RucioVenvError(
                    f"{self.venv_dir} has no Rucio server and {REQUIREMENTS_FILE} is not found"
                )
        elif not _newer_or_same(stamp, requirements):
            with _process.file_lock(lock):
                if not _newer_or_same(stamp, requirements):  # nobody built it while we waited
                    self._build_venv(requirements)
                    stamp.touch()
        self._ensure_bytecode(lock)

    def _ensure_bytecode(self, lock: Path) -> None:
        # Every server start and daemon pass imports most of Rucio (≈ 6 s from source, ≈ 1.5 s
        # from bytecode); uv installs without .pyc and PYTHONDONTWRITEBYTECODE may be set, so
        # compile once per install.
        marker = self.venv_dir / ".vre-bytecode"
        stamp = self.venv_dir / ".stamp"
        if _newer_or_same(marker, stamp):
            return
        with _process.file_lock(lock):
            if _newer_or_same(marker, stamp):
                return
            log = self.venv_dir / ".vre-build.log"
            site = str(self.site_packages())
            with log.open("ab") as handle:
                subprocess.call(  # noqa: S603 - fixed command; failure only costs speed
                    [str(self.python), "-m", "compileall", "-q", "-j", "0", site],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            marker.touch()

    def _build_venv(self, requirements: Path) -> None:
        log = self.venv_dir / ".vre-build.log"
        commands: list[list[str]] = []
        if not self.python.is_file():
            base = shutil.which("python3.11") or sys.executable
            commands.append([base, "-m", "venv", str(self.venv_dir)])
        uv = _find_uv()
        if uv is not None:
            commands.append(
                [uv, "pip", "sync", "-q", "--python", str(self.python), "--require-hashes",
                 str(requirements)]
            )  # fmt: skip
        else:
            commands.append(
                [str(self.python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 "--require-hashes", "--no-deps", "-r", str(requirements)]
            )  # fmt: skip
        with log.open("ab") as handle:
            for command in commands:
                handle.write(f"$ {' '.join(command)}\n".encode())
                handle.flush()
                code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)  # noqa: S603
                if code != 0:
                    raise RucioVenvError(
                        f"building {self.venv_dir} failed (exit {code}); log tail:\n"
                        f"{_process.log_tail(log)}"
                    )

    def site_packages(self) -> Path:
        """The server environment's site-packages (found without importing rucio)."""
        for candidate in sorted((self.venv_dir / "lib").glob("python3*/site-packages")):
            if (candidate / "rucio" / "db" / "sqla" / "migrate_repo").is_dir():
                return candidate
        raise RucioVenvError(f"no rucio server package under {self.venv_dir}/lib")

    def server_env(self) -> dict[str, str]:
        """Environment for every process that runs from the server environment."""
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        env["RUCIO_CONFIG"] = str(self.config_path)
        env["PATH"] = f"{self.venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.config.extra_env)
        # Never this project's packages: the server venv has its own versions of everything.
        env["PYTHONPATH"] = self.config.extra_env.get("PYTHONPATH", "")
        return env

    # --- configuration -------------------------------------------------------------------

    def write_config(self) -> None:
        """Write ``rucio.cfg`` and ``alembic.ini`` in the data folder."""
        for folder in (self.data_dir, self.log_dir, *self.rse_prefixes.values()):
            folder.mkdir(parents=True, exist_ok=True)
        cfg = configparser.ConfigParser(interpolation=None)
        database = {
            "default": self.database_url,
            "schema": self.config.database_schema,
            # One connection per gunicorn thread, a few more for a request that needs two.
            "pool_size": str(self.config.threads),
            "max_overflow": str(self.config.pool_overflow),
            "pool_recycle": "3600",
        }
        sections: dict[str, dict[str, str]] = {
            "common": {"logdir": str(self.log_dir), "loglevel": self.config.log_level},
            "database": database,
            "bootstrap": {
                "userpass_identity": self.admin_username,
                "userpass_pwd": self.admin_password,
                "userpass_email": self.config.admin_email,
                # Empty values stop Rucio from adding its well-known demo x509/GSS/SSH
                # identities to the root account.
                "x509_identity": "",
                "gss_identity": "",
                "ssh_identity": "",
            },
            "alembic": {"cfg": str(self.alembic_path)},
            "policy": {
                "permission": "generic",
                "schema": "generic",
                "lfn2pfn_algorithm_default": "hash",
            },
            "monitor": {"enable_metrics": "False"},
            # A socket path unique to this instance: a machine-wide memcached on
            # 127.0.0.1:11211 would otherwise be shared by every test server.
            "cache": {"url": f"unix:{self.cache.socket_path}"},
            "conveyor": {
                "transfertool": "mock",
                "scheme": ",".join(self.config.transfer_schemes),
            },
        }
        for name, values in PINNED_OPTIONS.items():
            sections[name] = {**values, **sections.get(name, {})}
        for name, values in sections.items():
            cfg[name] = {key: _escape(value) for key, value in values.items()}
        _write_atomic(self.config_path, _render(cfg))
        # The daemons read their database as before the cache: the reaper, for one, keeps RSE
        # usage and paused RSEs there for minutes, which one pass after another must not see.
        cfg["cache"] = {"url": _escape(f"unix:{self.data_dir / 'no-cache.sock'}")}
        _write_atomic(self.daemons_config_path, _render(cfg))

        alembic = configparser.ConfigParser(interpolation=None)
        alembic["alembic"] = {
            "script_location": _escape(f"{self.site_packages() / 'rucio/db/sqla/migrate_repo'}/"),
            "sqlalchemy.url": _escape(self.database_url),
        }
        alembic["alembic"]["version_table_schema"] = self.config.database_schema
        _write_atomic(self.alembic_path, _render(alembic) + "\n" + _ALEMBIC_LOGGING)

    # --- database ------------------------------------------------------------------------

    def bootstrap(self, timeout: float = 300.0) -> dict[str, bool]:
        """Create schema, base VO and root account unless present; return what was created."""
        started = time.perf_counter()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.bootstrap_log.open("ab") as log:
            try:
                completed = subprocess.run(  # noqa: S603 - fixed command, our own script
                    [str(self.python), str(SCRIPTS_DIR / "bootstrap_db.py")],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=self.server_env(),
                    cwd=self.data_dir,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise RucioBootstrapError(
                    f"bootstrap did not finish in {timeout:.0f} s; log tail:\n"
                    f"{_process.log_tail(self.bootstrap_log)}"
                ) from error
        if completed.returncode != 0:
            raise RucioBootstrapError(
                f"bootstrap of {_safe_url(self.database_url)} failed "
                f"(exit {completed.returncode}); log tail:\n"
                f"{_process.log_tail(self.bootstrap_log)}"
            )
        self.timings = replace(self.timings, bootstrap=time.perf_counter() - started)
        lines = completed.stdout.decode().strip().splitlines()
        result: dict[str, bool] = json.loads(lines[-1]) if lines else {}
        return result

    # --- process -------------------------------------------------------------------------

    def start(self) -> None:
        """Start gunicorn and wait until ``/ping`` answers (no-op if already running)."""
        if self.is_running:
            return
        started = time.perf_counter()
        self.cache.start()
        auto_port = self._port is None
        for _attempt in range(3 if auto_port else 1):
            if auto_port:
                self._port = _process.free_port(self.config.host)
            log_offset = self.server_log.stat().st_size if self.server_log.exists() else 0
            self._spawn()
            try:
                self._wait_ready()
            except RucioStartError:
                log_text = self.server_log.read_bytes()[log_offset:]
                if auto_port and b"Address already in use" in log_text:
                    self._port = None
                    continue  # another process took the port between probe and bind
                raise
            break
        else:
            raise RucioStartError("every free port probed was taken before gunicorn bound it")
        self.timings = replace(self.timings, start=time.perf_counter() - started)

    def _spawn(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.venv_dir / "bin" / "gunicorn"),
            "--bind", f"{self.config.host}:{self.port}",
            "--workers", str(self.config.workers),
            "--threads", str(self.config.threads),
            "--no-control-socket",
            "--graceful-timeout", "5",
            "--pythonpath", str(SCRIPTS_DIR),
            WSGI_APP,
        ]  # fmt: skip
        with self.server_log.open("ab") as log:
            log.write(f"=== start on port {self.port} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self._process = subprocess.Popen(  # noqa: S603 - fixed command from our venv
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.server_env(),
                cwd=self.data_dir,
            )
        _process.track(self._process)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        process = self._process
        assert process is not None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    _process.untrack(process)
                    self._process = None
                    raise RucioStartError(
                        f"gunicorn exited with code {process.returncode}; log tail:\n"
                        f"{_process.log_tail(self.server_log)}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = client.get(f"{self.url}/ping")
                    if response.status_code == 200:
                        self.version = str(response.json().get("version"))
                        return
                time.sleep(0.1)
        _process.terminate(process, timeout=5.0)
        self._process = None
        raise RucioStartError(
            f"no answer from {self.url}/ping within {self.config.start_timeout:.0f} s; "
            f"log tail:\n{_process.log_tail(self.server_log)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gunicorn (SIGINT, then SIGKILL after ``timeout`` s); the port is kept."""
        process, self._process = self._process, None
        if process is not None:
            _process.terminate(process, timeout=timeout, sig=signal.SIGINT)
        self.cache.stop()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Stop the server for the block and start it again on the same port afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        """Stop the daemon loop and the server (and its own PostgreSQL server, if any)."""
        try:
            if self._daemons is not None:
                self._daemons.stop()
            self.stop()
        finally:
            if self._postgres is not None:
                self._postgres.close()
                shutil.rmtree(self._postgres.root, ignore_errors=True)

    def up(self) -> Self:
        """Prepare everything and start: venv, config, database, bootstrap, server, RSEs."""
        self.ensure_venv()
        if self._postgres is not None:
            self._postgres.start()
            self._postgres.create_database(OWN_DATABASE)
        self.write_config()
        self.bootstrap()
        self.start()
        self.provision()
        return self

    def __enter__(self) -> Self:
        try:
            return self.up()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- REST helpers ----------------------------------------------------------------------

    def admin(self) -> RucioAdmin:
        """A REST admin client (close it, or use it as a context manager)."""
        return RucioAdmin(
            self.url,
            username=self.admin_username,
            password=self.admin_password,
            account=self.admin_account,
        )

    def admin_token(self) -> str:
        """A fresh admin auth token (``X-Rucio-Auth-Token``)."""
        return get_auth_token(
            self.url, self.admin_username, self.admin_password, account=self.admin_account
        )

    def provision(self) -> None:
        """Create the POSIX RSEs, their distances and the admin's quotas (idempotent)."""
        rses = [PosixRse(name=name, prefix=path) for name, path in self.rse_prefixes.items()]
        with self.admin() as admin:
            provision_posix_rses(admin, rses)
        self.cache.flush()

    def add_webdav_rse(
        self,
        name: str,
        url: str,
        *,
        impl: str = WEBDAV_IMPL,
        attributes: Mapping[str, str | bool | int] | None = None,
    ) -> None:
        """Register a WebDAV storage (``https://host:port/prefix/``) as an RSE.

        See :func:`vre_rucio_local.setup.add_webdav_rse`; the daemons' copying
        transfer tool then moves files between it and the POSIX RSEs.
        """
        with self.admin() as admin:
            add_webdav_rse(admin, name, url, impl=impl, attributes=attributes)
        self.cache.flush()

    def write_client_config(self, path: Path | None = None) -> Path:
        """Write a rucio-clients config (``[client]`` only) for ``RUCIO_CONFIG``.

        The auth token cache goes to a private folder next to the file, never to the
        machine-wide default shared by every run.
        """
        path = (path or self.data_dir / "client" / "rucio.cfg").resolve()
        token_dir = path.parent / f"{path.stem}-tokens"
        token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg = configparser.ConfigParser(interpolation=None)
        cfg["client"] = {
            "rucio_host": self.url,
            "auth_host": self.url,
            "auth_type": "userpass",
            "username": _escape(self.admin_username),
            "password": _escape(self.admin_password),
            "account": self.admin_account,
            "auth_token_file_path": str(token_dir / "auth_token"),
            "request_retries": "1",
            "protocol_stat_retries": "1",
        }
        _write_atomic(path, _render(cfg), mode=0o600)
        return path

    # --- daemons -------------------------------------------------------------------------

    @property
    def daemons(self) -> RucioDaemons:
        """The daemon supervisor for this server's database (created on first use)."""
        if self._daemons is None:
            self._daemons = RucioDaemons(
                python=self.python,
                env={**self.server_env(), "RUCIO_CONFIG": str(self.daemons_config_path)},
                log_dir=self.log_dir,
                lock_file=self.data_dir / "daemons.lock",
                interval=self.config.daemon_interval,
                log_level=self.config.daemon_log_level,
            )
        return self._daemons

    def run_daemons_once(self, timeout: float = 300.0) -> DaemonPassReport:
        """Run one pass of every daemon in a fresh process and wait for it."""
        report = self.daemons.run_once(timeout=timeout)
        self.timings = replace(self.timings, daemon_pass=report.seconds)
        return report


def _newer_or_same(path: Path, reference: Path) -> bool:
    """True if ``path`` exists and is not older than ``reference`` (make's rule)."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    try:
        return mtime >= reference.stat().st_mtime
    except FileNotFoundError:
        return True


def _find_uv() -> str | None:
    root = find_repo_root()
    candidates = [Path(sys.executable).with_name("uv")]
    if root is not None:
        candidates.insert(0, root / ".venv" / "bin" / "uv")
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return shutil.which("uv")


def _escape(value: str) -> str:
    """Escape a value for Rucio's and alembic's interpolating config parsers."""
    if "\n" in value or "\r" in value:
        raise ValueError("configuration values must be single lines")
    return value.replace("%", "%%")


def _render(cfg: configparser.ConfigParser) -> str:
    buffer = io.StringIO()
    cfg.write(buffer)
    return buffer.getvalue()


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def _safe_url(url: str) -> str:
    """A database URL with its password hidden (for error messages)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
