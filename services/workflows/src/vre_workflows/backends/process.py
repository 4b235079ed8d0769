"""Subprocesses in their own process group: time limits, cancellation, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ProcessResult:
    """How a process ended."""

    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False


def live_group_members(pgid: int) -> list[int]:
    """PIDs of processes of group ``pgid`` that are not zombies (Linux /proc)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def processes_of_runs(run_ids: set[str]) -> dict[str, list[int]]:
    """PIDs whose environment says ``VRE_RUN_ID=<id>`` for one of ``run_ids`` (Linux /proc).

    Every step the local executor starts on the host carries its run id in its environment,
    so what a crashed service left behind can be found, and nothing else is touched.
    """
    wanted = {f"VRE_RUN_ID={r}".encode(): r for r in run_ids}
    found: dict[str, list[int]] = {}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
        except OSError:
            continue
        for variable in variables:
            run_id = wanted.get(variable)
            if run_id is not None:
                found.setdefault(run_id, []).append(int(entry.name))
                break
    return found


def kill_leftovers(run_ids: set[str]) -> int:
    """SIGKILL the process groups of processes left by ``run_ids``; how many were found."""
    count = 0
    for pids in processes_of_runs(run_ids).values():
        for pid in pids:
            count += 1
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
    return count


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Child:
    """A process started by :func:`spawn`, awaited without a thread (a pidfd on Linux)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self._watcher: asyncio.Task[int] | None = None

    @property
    def returncode(self) -> int | None:
        """The exit code once :meth:`wait` saw the process end (negative: the signal)."""
        return self._popen.returncode

    async def wait(self) -> int:
        """Wait until the process has exited (and reap it); its exit code. One watch serves
        every waiter, and a waiter that is cancelled leaves it running."""
        if self._popen.returncode is not None:
            return self._popen.returncode
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._exit())
        return await asyncio.shield(self._watcher)

    async def _exit(self) -> int:
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd here: a thread waits
            return await asyncio.to_thread(self._popen.wait)
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        try:
            loop.add_reader(fd, ready)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
        finally:
            os.close(fd)
        return self._popen.wait()  # it has exited: this only reaps it


def spawn(argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> Child:
    """Start ``argv`` in a new session, stdout+stderr appended to ``log_path``.

    With subprocess (vfork or posix_spawn), not the event loop's own spawn: uvloop's forks the
    whole service, ≈ 15 ms of page-table copying with the interpreter lock held, per step.
    """
    with log_path.open("ab") as log:
        popen = subprocess.Popen(  # noqa: S603 - the step's own command, as before
            argv,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(popen)


async def kill_group(process: Child, pgid: int, *, grace: float) -> None:
    """SIGTERM the whole group, SIGKILL after ``grace`` seconds, wait until none is alive."""
    _signal_group(pgid, signal.SIGTERM)
    if grace > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await process.wait()
    _signal_group(pgid, signal.SIGKILL)
    await process.wait()
    await reap_group(pgid)


async def reap_group(pgid: int, *, within: float = 5.0) -> None:
    """Kill what is left of a group whose leader has exited (background jobs of a step)."""
    try:
        os.killpg(pgid, 0)  # is any process of the group left? (usually none: no /proc scan)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while await asyncio.to_thread(live_group_members, pgid):
        _signal_group(pgid, signal.SIGKILL)
        if loop.time() > deadline:
            return
        await asyncio.sleep(0.02)


async def run_in_group(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    time_limit: float,
    cancel: asyncio.Event,
    grace: float,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> ProcessResult:
    """Run ``argv`` in a new session with stdout+stderr appended to ``log_path``.

    Ends when the process exits, ``time_limit`` seconds pass, or ``cancel`` is set; in the last
    two cases the whole process group is killed (``on_stop`` runs first, e.g. to stop a
    container whose client is the process). Whatever happens, no process of the group is left
    running afterwards — also when the calling task itself is cancelled.
    """
    process = spawn(argv, cwd=cwd, env=env, log_path=log_path)
    pgid = process.pid
    waiter = asyncio.ensure_future(process.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        done, _ = await asyncio.wait(
            {waiter, cancelled}, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter in done:
            await reap_group(pgid)
            return ProcessResult(exit_code=process.returncode)
        if on_stop is not None:
            await on_stop()
        await kill_group(process, pgid, grace=grace)
        return ProcessResult(
            exit_code=process.returncode,
            timed_out=cancelled not in done,
            cancelled=cancelled in done,
        )
    except BaseException:
        # The service is shutting down (task cancelled): leave nothing running.
        if process.returncode is None:
            if on_stop is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(on_stop())
            _signal_group(pgid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.shield(process.wait())
        raise
    finally:
        cancelled.cancel()
        if not waiter.done():
            waiter.cancel()
