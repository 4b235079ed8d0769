"""Small process and file helpers shared by the embedded Rucio server and its daemons."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

LOG_TAIL_LINES = 40

_live_processes: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def track(process: subprocess.Popen[bytes]) -> None:
    """Remember a child so that it is interrupted if the interpreter exits first."""
    with _live_lock:
        _live_processes.add(process)


def untrack(process: subprocess.Popen[bytes]) -> None:
    """Forget a child that has been stopped."""
    with _live_lock:
        _live_processes.discard(process)


def terminate(process: subprocess.Popen[bytes], timeout: float, sig: int = signal.SIGINT) -> None:
    """Send ``sig`` to a child, wait up to ``timeout`` seconds, then kill it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
    untrack(process)


@atexit.register
def _stop_leftovers() -> None:
    # A server or daemon loop left running by a crashed caller must not outlive it.
    with _live_lock:
        leftovers = list(_live_processes)
    for process in leftovers:
        terminate(process, timeout=5.0)
