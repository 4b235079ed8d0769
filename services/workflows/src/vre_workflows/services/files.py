"""RunFiles: a run's logs (optionally followed live) and outputs, streamed from disk.

No database session stays open while bytes flow: access is checked with one short read,
and a follower polls step states with short reads between chunks. Files are read in 64 KiB
chunks, so a log of any size streams with flat memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from vre_common.auth import Principal
from vre_common.db import Database
from vre_common.policy import Action
from vre_workflows.errors import OutputNotFoundError, RunNotFoundError
from vre_workflows.models import TERMINAL_STATUSES, Run, RunOutput
from vre_workflows.services.access import RunAccess
from vre_workflows.storage.runs import RunStore
from vre_workflows.workspace import RunPaths, inside

CHUNK = 64 * 1024
_STEP_DONE = ("finished", "failed", "cancelled", "skipped", "interrupted")


class RunFiles:
    """Logs and outputs of the runs the caller may read (``runs.read``)."""

    def __init__(
        self, *, db: Database, data_dir: Path, access: RunAccess, poll_seconds: float = 0.5
    ) -> None:
        self._db = db
        self._access = access
        self._data_dir = data_dir
        self._poll = poll_seconds

    async def _readable(self, user: Principal, token: str | None, run_id: str) -> Run:
        async with self._db.sessionmaker() as session:
            owned = await RunStore(session).ownership(run_id)
        if owned is None:
            raise RunNotFoundError(f"no run {run_id}")
        await self._access.require(
            user, token, run_id, owner=owned[0], project=owned[1], action=Action.RUNS_READ
        )
        async with self._db.sessionmaker() as session:
            run = await RunStore(session).get(run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id}")
        return run

    async def _states(self, run_id: str) -> tuple[str | None, list[tuple[int, str, str]]]:
        async with self._db.sessionmaker() as session:
            store = RunStore(session)
            return await store.status_of(run_id), await store.step_states(run_id)

    async def logs(
        self,
        user: Principal,
        run_id: str,
        *,
        step: str | None,
        follow: bool,
        token: str | None = None,
    ) -> AsyncIterator[bytes]:
        """The run's log (every step, with a header line each) or one step's log.

        ``step`` is a step name or index. With ``follow`` the stream stays open and sends new
        lines as they are written, until the step (or the whole run) has ended.
        """
        run = await self._readable(user, token, run_id)
        paths = RunPaths.of(self._data_dir, run.id)
        position: int | None = None
        if step is not None:
            matches = [s.index for s in run.steps if s.name == step or str(s.index) == step]
            if not matches:
                names = ", ".join(s.name for s in run.steps) or "none yet"
                raise RunNotFoundError(f"run {run_id} has no step {step!r} (steps: {names})")
            position = matches[0]
        return self._stream(run.id, paths, position, follow)

    async def _stream(
        self, run_id: str, paths: RunPaths, only: int | None, follow: bool
    ) -> AsyncIterator[bytes]:
        position = only if only is not None else 0
        while True:
            run_status, states = await self._states(run_id)
            known = {p: (n, s) for p, n, s in states}
            if position not in known:
                if only is not None or not follow or run_status in TERMINAL_STATUSES:
                    return
                await asyncio.sleep(self._poll)
                continue
            name, status = known[position]
            if follow:
                while status == "pending" and run_status not in TERMINAL_STATUSES:
                    await asyncio.sleep(self._poll)
                    run_status, states = await self._states(run_id)
                    status = next((s for p, _, s in states if p == position), "skipped")
            log_path = paths.step_log(position)
            if only is None and (log_path.exists() or status not in ("pending", "skipped")):
                yield f"==> step {position}: {name} ({status}) <==\n".encode()
            async for chunk in self._tail(
                run_id, position, log_path, follow and status not in _STEP_DONE
            ):
                yield chunk
            if only is not None:
                return
            position += 1

    async def _tail(
        self, run_id: str, position: int, path: Path, follow: bool
    ) -> AsyncIterator[bytes]:
        while not await anyio.Path(path).exists():
            if not follow:
                return
            if await self._step_done(run_id, position):
                if not await anyio.Path(path).exists():
                    return
                break
            await asyncio.sleep(self._poll)
        async with await anyio.open_file(path, "rb") as handle:
            while True:
                chunk = await handle.read(CHUNK)
                if chunk:
                    yield chunk
                    continue
                if not follow:
                    return
                if await self._step_done(run_id, position):
                    # The writer has finished: drain what it wrote last, then stop.
                    while chunk := await handle.read(CHUNK):
                        yield chunk
                    return
                await asyncio.sleep(self._poll)

    async def _step_done(self, run_id: str, position: int) -> bool:
        run_status, states = await self._states(run_id)
        status = next((s for p, _, s in states if p == position), None)
        return status in _STEP_DONE or run_status in TERMINAL_STATUSES or status is None

    async def output_path(
        self, user: Principal, run_id: str, path: str, token: str | None = None
    ) -> tuple[Path, RunOutput]:
        """A declared output's file in the workspace, and its record (size, checksums)."""
        run = await self._readable(user, token, run_id)
        output = next((o for o in run.outputs if o.path == path), None)
        if output is None:
            raise OutputNotFoundError(f"run {run_id} has no output {path!r}")
        if run.workspace_removed:
            where = f"; it is in the Data Lake as {output.did}" if output.did else ""
            raise OutputNotFoundError(f"the workspace of run {run_id} was deleted{where}")
        try:
            file = inside(RunPaths.of(self._data_dir, run.id).workspace, path)
        except ValueError as exc:
            raise OutputNotFoundError(str(exc)) from exc
        if not file.is_file():
            raise OutputNotFoundError(f"output {path!r} is no longer in the workspace")
        return file, output
