"""Rucio's background daemons for the embedded server, supervised from the project's process.

The daemons run in the Rucio server's virtual environment (``scripts/daemon_pass.py``):
in one long-lived loop process, restarted when it dies, and in single passes run on demand
(:meth:`RucioDaemons.run_once`, which tests use to make rules progress) by a worker process
kept between calls, or by a fresh process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from vre_rucio_local import _process
from vre_rucio_local.errors import DaemonPassError
from vre_rucio_local.scripts.daemon_pass import REPORT_PREFIX

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
        log_level: str = "WARNING",
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
        self._worker: subprocess.Popen[bytes] | None = None
        self._worker_guard = threading.Lock()
        self.restarts = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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

    def run_once(self, timeout: float = 300.0, *, fresh: bool = False) -> DaemonPassReport:
        """Run one full pass and wait for it; raise :class:`DaemonPassError` if it fails.

        By default the pass runs in a worker process kept for the next calls (a pass then
        takes ≈ 0.3 s instead of ≈ 2.5 s, most of which is importing Rucio); ``fresh=True``
        uses a new process for this pass only.
        """
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with self._worker_guard:
            report = self._run_fresh(timeout) if fresh else self._run_in_worker(timeout)
        if report.errors:
            raise DaemonPassError(
                f"daemon pass failed in {sorted(report.errors)}: {dict(report.errors)}; "
                f"log tail:\n{_process.log_tail(self.once_log)}"
            )
        return report

    def _run_fresh(self, timeout: float) -> DaemonPassReport:
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
                raise self._failure(f"did not finish in {timeout:.0f} s") from error
        for line in completed.stdout.decode("utf-8", errors="replace").splitlines():
            if line.startswith(REPORT_PREFIX):
                return _parse_report(line)
        raise self._failure(f"exited with code {completed.returncode} without a report")

    def _run_in_worker(self, timeout: float) -> DaemonPassReport:
        worker = self._worker
        if worker is None or worker.poll() is not None:
            worker = self._worker = self._spawn_worker()
        if worker.stdin is None or worker.stdout is None:  # pragma: no cover - set by Popen
            raise self._failure("worker process has no pipes")
        try:
            worker.stdin.write(b"run\n")
            worker.stdin.flush()
        except BrokenPipeError:
            self._stop_worker()
            raise self._failure("worker process died") from None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([worker.stdout], [], [], remaining)
            if not ready:
                continue
            raw = worker.stdout.readline()
            if not raw:
                code = worker.wait()
                self._stop_worker()
                raise self._failure(f"worker process exited with code {code}")
            line = raw.decode("utf-8", errors="replace")
            if line.startswith(REPORT_PREFIX):
                return _parse_report(line)
        self._stop_worker()
        raise self._failure(f"did not finish in {timeout:.0f} s")

    def _spawn_worker(self) -> subprocess.Popen[bytes]:
        with self.once_log.open("ab") as log:
            log.write(f"=== worker start at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            worker = subprocess.Popen(  # noqa: S603 - fixed command, our own script
                self._command("--serve"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self._env,
            )
        _process.track(worker)
        return worker

    def _stop_worker(self, timeout: float = 30.0) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if worker.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                worker.stdin.close()  # EOF: an idle worker exits at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=min(timeout, 5.0))
        _process.terminate(worker, timeout=timeout, sig=signal.SIGTERM)
        if worker.stdout is not None:
            worker.stdout.close()

    def _failure(self, what: str) -> DaemonPassError:
        return DaemonPassError(f"daemon pass {what}; log tail:\n{_process.log_tail(self.once_log)}")

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
        """Stop the loop and the ``run_once`` worker after their current pass (killed after
        ``timeout`` seconds)."""
        with self._worker_guard:
            self._stop_worker(timeout)
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


def _parse_report(line: str) -> DaemonPassReport:
    data = json.loads(line[len(REPORT_PREFIX) :])
    return DaemonPassReport(
        seconds=float(data.get("seconds", 0.0)),
        steps={str(k): float(v) for k, v in data.get("steps", {}).items()},
        errors={str(k): str(v) for k, v in data.get("errors", {}).items()},
    )
