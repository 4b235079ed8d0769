"""A private memcached beside the development Rucio, as Rucio's deployments run one.

Without it, Rucio looks up RSE information, RSE attributes, expressions and token validity in
its database on every request that needs them: about a fifth of its server's time on an
upload. The cache listens on a Unix socket in the instance's data folder (rucio.cfg names it),
so test servers never share one. Where memcached is not installed Rucio runs as before,
reading its database each time (it treats an unreachable cache as a miss).

Rucio keeps what it caches for minutes (RSE expressions ten), as in production: whoever
changes RSEs through this package flushes the cache (:meth:`RucioCache.flush`), so that a new
RSE is found at once by the next expression.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from vre_rucio_local import _process

MEMORY_MB = 64
# AF_UNIX paths are at most 107 bytes on Linux
_MAX_SOCKET_PATH = 100


class RucioCache:
    """A memcached process on ``socket_path`` (started when memcached is installed)."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def available(self) -> bool:
        """True where memcached is installed and the socket path fits."""
        return (
            shutil.which("memcached") is not None and len(str(self.socket_path)) <= _MAX_SOCKET_PATH
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> bool:
        """Start memcached unless it runs; False where it cannot run here."""
        if self.running:
            return True
        if not self.available:
            return False
        self.socket_path.unlink(missing_ok=True)
        command = [
            "memcached",
            "-s", str(self.socket_path),
            "-a", "0600",
            "-m", str(MEMORY_MB),
            "-t", "2",
        ]  # fmt: skip
        if os.geteuid() == 0:
            command += ["-u", "root"]  # memcached refuses to run as root unless told so
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed command
                command, stdout=log, stderr=subprocess.STDOUT
            )
        _process.track(self._process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                _process.untrack(self._process)
                self._process = None
                return False
            if self._answers("version"):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def flush(self) -> None:
        """Forget everything Rucio cached (after RSEs, their attributes or limits changed)."""
        if self.running and not self._answers("flush_all"):
            raise RuntimeError(f"memcached on {self.socket_path} did not flush")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _process.terminate(process, timeout=5.0, sig=signal.SIGTERM)
        self.socket_path.unlink(missing_ok=True)

    def stats(self) -> dict[str, str]:
        """memcached's counters (``cmd_set``, ``get_hits`` …); empty when it is not running."""
        try:
            reply = self._ask("stats", end=b"END\r\n")
        except OSError:
            return {}
        return {
            parts[1]: parts[2]
            for line in reply.decode().splitlines()
            if len(parts := line.split()) == 3 and parts[0] == "STAT"
        }

    def _answers(self, command: str) -> bool:
        try:
            return self._ask(command).startswith((b"OK", b"VERSION"))
        except OSError:
            return False

    def _ask(self, command: str, end: bytes = b"\r\n") -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(str(self.socket_path))
            conn.sendall(command.encode() + b"\r\n")
            reply = b""
            while not reply.endswith(end):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply
