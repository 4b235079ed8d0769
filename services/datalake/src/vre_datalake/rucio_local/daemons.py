"""Rucio's background daemons for the embedded server, supervised from the project's process.

The daemons run in the Rucio server's virtual environment (``scripts/daemon_pass.py``):
either one long-lived loop process, restarted when it dies, or a single pass in a fresh
process (:meth:`RucioDaemons.run_once`, which tests use to make rules progress on demand).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vre_datalake.rucio_local import _process
from vre_datalake.rucio_local.errors import DaemonPassError

SCRIPT = Path(__file__).with_name("scripts") / "daemon_pass.py"
LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class DaemonPassReport:
    """What one daemon pass did: seconds per step, total seconds, errors by step."""

    seconds: float
    steps: Mapping[str, float]
    errors: Mapping[str, str] = field(default_factory=dict)


class RucioDaemons:
    """Runs Rucio's judge, conveyor, reaper and abacus daemons against one server's database.

    ``start()`` launches a loop process that runs a pass every ``interval`` seconds and is
    restarted (with a growing delay) when it exits unexpectedly; ``trigger()`` asks it for a
    pass now; ``run_once()`` runs one pass in a fresh process and waits for it. Passes from
    the loop and from ``run_once()`` never overlap (they share a lock file).
    """

    def __init__(
        self,
        *,
        python: Path,
        env: Mapping[str, str],
        log_dir: Path,
        lock_file: Path,
        interval: float = 5.0,
        log_level: str = "INFO",
        max_restart_delay: float = 60.0,
    ) -> None:
        self._python = python
        self._env = dict(env)
        self._log_dir = log_dir
        self._lock_file = lock_file
        self.interval = interval
        self._log_level = log_level
        self._max_restart_delay = max_restart_delay
        self._process: subprocess.Popen[bytes] | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self.restarts = 0

    @property
    def loop_log(self) -> Path:
        """Log file of the loop process (appended across restarts)."""
        return self._log_dir / "rucio-daemons.log"

    @property
    def once_log(self) -> Path:
        """Log file of the single passes run by :meth:`run_once`."""
        return self._log_dir / "rucio-daemons-once.log"

    @property
    def running(self) -> bool:
        """True while the loop process is alive."""
        process = self._process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the current loop process, if any."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _command(self, *mode: str) -> list[str]:
        return [
            str(self._python),
            str(SCRIPT),
            *mode,
            "--lock",
            str(self._lock_file),
            "--log-level",
            self._log_level,
        ]

    def run_once(self, timeout: float = 300.0) -> DaemonPassReport:
        """Run one full pass in a fresh process; raise :class:`DaemonPassError` if it fails."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with self.once_log.open("ab") as log:
            log.write(f"=== pass at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            try:
                completed = subprocess.run(  # noqa: S603 - fixed command, our own script
                    self._command("--once"),
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=self._env,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise DaemonPassError(
                    f"daemon pass did not finish in {timeout:.0f} s; log tail:\n"
                    f"{_process.log_tail(self.once_log)}"
                ) from error
        report = _parse_report(completed.stdout)
        if completed.returncode != 0 or report is None:
            detail = (
                f"step errors: {dict(report.errors)}"
                if report is not None and report.errors
                else f"exit code {completed.returncode}"
            )
            raise DaemonPassError(
                f"daemon pass failed ({detail}); log tail:\n{_process.log_tail(self.once_log)}"
            )
        return report

    def start(self) -> None:
        """Start the supervised loop process (no-op if it already runs)."""
        with self._guard:
            if self._supervisor is not None and self._supervisor.is_alive():
                return
            self._stopping.clear()
            self._spawn()
            self._supervisor = threading.Thread(
                target=self._supervise, name="rucio-daemons-supervisor", daemon=True
            )
            self._supervisor.start()

    def trigger(self) -> None:
        """Ask the loop process to start its next pass now (no-op when it is not running)."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGUSR1)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the loop after its current pass (killed after ``timeout`` seconds)."""
        self._stopping.set()
        with self._guard:
            process = self._process
            self._process = None
        if process is not None:
            _process.terminate(process, timeout=timeout, sig=signal.SIGTERM)
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.join(timeout=timeout)
            self._supervisor = None

    def _spawn(self) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with self.loop_log.open("ab") as log:
            log.write(f"=== loop start at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            process = subprocess.Popen(  # noqa: S603 - fixed command, our own script
                self._command("--loop", "--interval", str(self.interval)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
            )
        _process.track(process)
        self._process = process

    def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            _process.untrack(process)
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 10 * self._max_restart_delay:
                delay = 1.0  # it ran for a good while: a crash now is not a crash loop
            LOGGER.warning(
                "Rucio daemon loop exited with code %s; restarting in %.0f s", code, delay
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self._max_restart_delay)
            with self._guard:
                if self._stopping.is_set():
                    return
                self._spawn()
                self.restarts += 1


def _parse_report(stdout: bytes) -> DaemonPassReport | None:
    for raw in reversed(stdout.decode("utf-8", errors="replace").splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            data = json.loads(line)
            return DaemonPassReport(
                seconds=float(data.get("seconds", 0.0)),
                steps={str(k): float(v) for k, v in data.get("steps", {}).items()},
                errors={str(k): str(v) for k, v in data.get("errors", {}).items()},
            )
    return None
