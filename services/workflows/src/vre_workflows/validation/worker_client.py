"""Drive the official REANA validator (``reana_worker.py``) as a long-lived subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

import structlog

from vre_common.errors import BackendTimeoutError, BackendUnavailableError

WORKER_SCRIPT = Path(__file__).with_name("reana_worker.py")
_LINE_LIMIT = 64 << 20  # one answer is one line: room for a large specification
log = structlog.get_logger("vre.workflows.validator")


class ReanaValidatorWorker:
    """One worker process in the validator environment; restarted when it dies or hangs.

    Requests are serialised (the worker answers in ≈ 2 ms); a request that takes longer than
    ``timeout`` seconds kills the worker and fails with 504, the next request starts a new one.
    """

    def __init__(
        self, python: Path, *, timeout: float = 30.0, script: Path = WORKER_SCRIPT
    ) -> None:
        self._python = python
        self._script = script
        self._timeout = timeout
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.starts = 0

    @property
    def python(self) -> Path:
        """The validator environment's Python (REANA's loaders run with it too)."""
        return self._python

    async def _ensure_started(self) -> asyncio.subprocess.Process:
        if self._process is not None and self._process.returncode is None:
            return self._process
        if not self._python.exists():
            raise BackendUnavailableError(
                f"the REANA validator environment is missing ({self._python} does not exist); "
                "build it with `make .venv-reana/.stamp`",
                retry_after=60,
            )
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self._python),
                "-I",
                str(self._script),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=_LINE_LIMIT,
            )
        except OSError as exc:
            raise BackendUnavailableError(
                f"the REANA validator could not be started: {exc}", retry_after=30
            ) from exc
        self.starts += 1
        self._stderr_task = asyncio.create_task(self._drain_stderr(self._process))
        return self._process

    @staticmethod
    async def _drain_stderr(process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            log.debug("validator_stderr", line=line.decode(errors="replace").rstrip()[:500])

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the worker's answer (``ok`` is true)."""
        async with self._lock:
            process = await self._ensure_started()
            assert process.stdin is not None
            assert process.stdout is not None
            request_id = next(self._ids)
            line = json.dumps({**payload, "id": request_id}, default=str) + "\n"
            try:
                async with asyncio.timeout(self._timeout):
                    process.stdin.write(line.encode())
                    await process.stdin.drain()
                    raw = await process.stdout.readline()
            except TimeoutError as exc:
                await self._kill()
                raise BackendTimeoutError(
                    f"the REANA validator did not answer within {self._timeout:g} s"
                ) from exc
            except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
                await self._kill()
                raise BackendUnavailableError(f"the REANA validator failed: {exc}") from exc
            if not raw:
                code = await self._kill()
                raise BackendUnavailableError(
                    f"the REANA validator exited (code {code}); it is restarted on the next call"
                )
            answer: dict[str, Any] = json.loads(raw)
            if answer.get("id") != request_id:
                await self._kill()
                raise BackendUnavailableError("the REANA validator answered out of order")
            if not answer.get("ok"):
                raise BackendUnavailableError(
                    f"the REANA validator could not handle the request: {answer.get('error')}"
                )
            return answer

    async def ping(self) -> None:
        """Readiness: the worker starts and answers."""
        await self.request({"op": "ping"})

    async def _kill(self) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        code = await process.wait()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr_task
            self._stderr_task = None
        return code

    async def aclose(self) -> None:
        """Stop the worker (closing stdin lets it exit cleanly)."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None and process.returncode is None:
            process.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await process.wait()
        await self._kill()
