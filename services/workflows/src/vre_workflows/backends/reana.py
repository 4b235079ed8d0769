"""REANA: ``ReanaClient`` (one server's REST API, reana_server.json, Swagger 2.0, over async
httpx) and ``ReanaWorkflowBackend`` (the workflow backend port on top of it; every piece of
REANA's JSON is read here and nowhere else).

The user's token travels as ``?access_token=`` (REANA 0.9): it is added per request and never
appears in a log line or an error detail (URLs are scrubbed). REANA's error messages
(``{"message": ...}``) become our problems: a rejected token → 403 ``reana-token-rejected``,
an exceeded quota → 403 ``reana-quota-exceeded`` with REANA's text, 404 → 404, 400 → 422,
409 → 409, 5xx → 502; a REANA that cannot be reached → 503/504.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import structlog

from vre_common.errors import (
    BackendError,
    BadGatewayError,
    ForbiddenError,
    InvalidInputError,
    VreError,
)
from vre_common.http import backend_call, make_http_client
from vre_common.logging import scrub
from vre_workflows.backends.base import (
    ExecutionOutcome,
    Plan,
    PlanRequest,
    RunJob,
    RunReporter,
    StepPlan,
)
from vre_workflows.config import ReanaServerSettings, ReanaSettings
from vre_workflows.errors import (
    InvalidSpecificationError,
    ReanaNotFoundError,
    ReanaQuotaExceededError,
    ReanaRequestError,
    ReanaTokenRejectedError,
    RunStateError,
)
from vre_workflows.models import Run, Step
from vre_workflows.spec import declared_outputs, step_name
from vre_workflows.workspace import RunPaths, inside

log = structlog.get_logger("vre.workflows.reana")

CHUNK = 1 << 20
_TOKEN_MESSAGES = ("token", "not signed in", "not logged in")


class ScrubTokensFilter(logging.Filter):
    """Masks ``access_token=…`` in records of a logger (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message if it carries a token; never drop the record."""
        message = record.getMessage()
        if "token" in message.lower():
            record.msg = scrub(message)
            record.args = ()
        return True


def protect_http_logs() -> None:
    """Install the filter on the HTTP client loggers once (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubTokensFilter) for f in logger.filters):
            logger.addFilter(ScrubTokensFilter())


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return scrub(response.text[:500]) or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return scrub(body["message"])
    return scrub(json.dumps(body)[:500])


def reana_error(response: httpx.Response, operation: str) -> VreError:
    """Translate a REANA error answer into our error."""
    status = response.status_code
    message = _message(response)
    if status == 403 and message.lower().startswith("user quota exceeded"):
        return ReanaQuotaExceededError(f"REANA: {message}")
    if status in (401, 403) and any(m in message.lower() for m in _TOKEN_MESSAGES):
        return ReanaTokenRejectedError(
            f"REANA refused the registered token ({message}); register a valid one with "
            "PUT /credentials/reana"
        )
    plain: dict[int, type[VreError]] = {
        403: ForbiddenError,
        404: ReanaNotFoundError,
        409: RunStateError,
    }
    if status in plain:
        return plain[status](f"REANA: {message}")
    if status in (400, 422):
        return ReanaRequestError(f"REANA refused {operation}: {message}")
    return BadGatewayError(f"REANA answered {status} to {operation}: {message}")


class ReanaClient:
    """Async client of one REANA server; every method takes the user's REANA token."""

    def __init__(self, name: str, settings: ReanaServerSettings) -> None:
        protect_http_logs()
        self.name = name
        self.url = settings.url
        self._http = make_http_client(settings.http, base_url=settings.url, verify=settings.verify)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        token: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        query = {**(params or {}), "access_token": token}
        async with backend_call("reana", operation):
            response = await self._http.request(
                method, path, params=query, json=json_body, content=content, headers=headers
            )
        if response.status_code not in ok:
            raise reana_error(response, operation)
        try:
            return response.json()
        except ValueError as exc:
            raise BadGatewayError(
                f"REANA answered {operation} with a body that is not JSON"
            ) from exc

    async def you(self, token: str) -> dict[str, Any]:
        """``GET /api/you``: who the token is, and the quota."""
        data: dict[str, Any] = await self._call("GET", "/api/you", "get_you", token)
        return data

    async def create(self, token: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/workflows``: create a workflow; returns workflow_id and workflow_name."""
        data: dict[str, Any] = await self._call(
            "POST",
            "/api/workflows",
            "create_workflow",
            token,
            params={"workflow_name": name},
            json_body=spec,
            ok=(201, 200),
        )
        if not isinstance(data.get("workflow_id"), str):
            raise BadGatewayError("REANA created a workflow without a workflow_id")
        return data

    async def upload(self, token: str, workflow_id: str, file_name: str, path: Path) -> None:
        """``POST /api/workflows/{id}/workspace?file_name=…``, streamed from ``path``."""

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as handle:
                while chunk := await handle.read(CHUNK):
                    yield chunk

        size = (await anyio.Path(path).stat()).st_size
        await self._call(
            "POST",
            f"/api/workflows/{quote(workflow_id, safe='')}/workspace",
            "upload_file",
            token,
            params={"file_name": file_name},
            content=chunks(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )

    async def start(
        self, token: str, workflow_id: str, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """``POST /api/workflows/{id}/start`` with input parameters."""
        data: dict[str, Any] = await self._call(
            "POST",
            f"/api/workflows/{quote(workflow_id, safe='')}/start",
            "start_workflow",
            token,
            json_body={"input_parameters": parameters, "operational_options": {}},
        )
        return data

    async def status(self, token: str, workflow_id: str) -> dict[str, Any]:
        """``GET /api/workflows/{id}/status``."""
        data: dict[str, Any] = await self._call(
            "GET",
            f"/api/workflows/{quote(workflow_id, safe='')}/status",
            "get_workflow_status",
            token,
        )
        return data

    async def logs(self, token: str, workflow_id: str) -> dict[str, Any]:
        """``GET /api/workflows/{id}/logs``; the JSON-encoded ``logs`` string decoded."""
        data = await self._call(
            "GET", f"/api/workflows/{quote(workflow_id, safe='')}/logs", "get_workflow_logs", token
        )
        raw = data.get("logs") if isinstance(data, dict) else None
        if not isinstance(raw, str) or not raw:
            return {}
        try:
            decoded = json.loads(raw)
        except ValueError:
            return {"workflow_logs": raw}
        return decoded if isinstance(decoded, dict) else {"workflow_logs": raw}

    async def files(self, token: str, workflow_id: str) -> list[dict[str, Any]]:
        """``GET /api/workflows/{id}/workspace``, every page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            data = await self._call(
                "GET",
                f"/api/workflows/{quote(workflow_id, safe='')}/workspace",
                "get_files",
                token,
                params={"page": page, "size": 500},
            )
            batch = data.get("items", []) if isinstance(data, dict) else []
            items.extend(i for i in batch if isinstance(i, dict))
            total = data.get("total") if isinstance(data, dict) else None
            if not batch or not isinstance(total, int) or len(items) >= total:
                return items
            page += 1

    @asynccontextmanager
    async def download(
        self, token: str, workflow_id: str, file_name: str
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """``GET /api/workflows/{id}/workspace/{file_name}``, streamed."""
        path = (
            f"/api/workflows/{quote(workflow_id, safe='')}/workspace/{quote(file_name, safe='/')}"
        )
        async with backend_call("reana", "download_file"):
            request = self._http.build_request("GET", path, params={"access_token": token})
            response = await self._http.send(request, stream=True)
        try:
            if response.status_code != 200:
                await response.aread()
                raise reana_error(response, "download_file")

            async def body() -> AsyncIterator[bytes]:
                async with backend_call("reana", "download_file"):
                    async for chunk in response.aiter_bytes(CHUNK):
                        yield chunk

            yield body()
        finally:
            await response.aclose()

    async def stop(self, token: str, workflow_id: str) -> None:
        """``PUT /api/workflows/{id}/status?status=stop``."""
        await self._call(
            "PUT",
            f"/api/workflows/{quote(workflow_id, safe='')}/status",
            "set_workflow_status",
            token,
            params={"status": "stop"},
            json_body={},
        )

    async def delete(self, token: str, workflow_id: str) -> None:
        """``PUT /api/workflows/{id}/status?status=deleted`` with the workspace."""
        await self._call(
            "PUT",
            f"/api/workflows/{quote(workflow_id, safe='')}/status",
            "set_workflow_status",
            token,
            params={"status": "deleted"},
            json_body={"workspace": True},
        )

    async def ping(self) -> None:
        """Readiness: ``GET /api/ping`` answers."""
        async with backend_call("reana", "ping"):
            response = await self._http.get("/api/ping")
        if response.status_code != 200:
            raise BadGatewayError(f"REANA {self.name} answered {response.status_code} to ping")


REANA_STATUS: dict[str, str] = {
    "created": "queued",
    "queued": "queued",
    "pending": "queued",
    "running": "running",
    "finished": "finished",
    "failed": "failed",
    "stopped": "cancelled",
    "deleted": "deleted",
}
"""REANA workflow statuses → ours."""

_JOB_STATUS = {
    "created": "pending",
    "queued": "pending",
    "running": "running",
    "finished": "finished",
    "failed": "failed",
    "stopped": "cancelled",
}
"""REANA job statuses → our step statuses."""

_ENDINGS = {
    "cancelled": ExecutionOutcome("cancelled", "stopped on REANA"),
    "deleted": ExecutionOutcome(
        "failed",
        "the workflow was deleted on REANA",
        error={"title": "Run deleted", "detail": "the workflow was deleted on REANA"},
    ),
    "finished": ExecutionOutcome("finished"),
    "failed": ExecutionOutcome("failed", "the workflow failed on REANA"),
}
"""Our statuses a REANA workflow ends in → how the run ends."""

TokenLookup = Callable[[str, str], Awaitable[str]]
"""(owner, server) → the owner's registered REANA token (409 when there is none)."""


class ReanaServers:
    """The configured REANA servers, by name."""

    def __init__(self, clients: dict[str, ReanaClient], default: str | None) -> None:
        self.clients = clients
        if default is None and len(clients) == 1:
            default = next(iter(clients))
        self.default = default

    def get(self, name: str | None) -> ReanaClient:
        """The named server, or the default; 422 if unknown or none is configured."""
        chosen = name or self.default
        if not self.clients:
            raise InvalidInputError(
                "no REANA server is configured on this deployment (VRE_WORKFLOWS_REANA__SERVERS)"
            )
        if chosen is None or chosen not in self.clients:
            known = ", ".join(sorted(self.clients))
            raise InvalidInputError(
                f"unknown REANA server {chosen!r}; this deployment has: {known}",
                errors=[{"loc": ["reana_server"], "msg": "unknown server", "type": "value_error"}],
            )
        return self.clients[chosen]

    async def aclose(self) -> None:
        """Close every client."""
        for client in self.clients.values():
            await client.aclose()


class ReanaWorkflowBackend:
    """Runs go to a REANA server: created at submission, the staged workspace uploaded, then
    started and polled (with backoff; a short outage of REANA's API is borne for
    ``poll_outage_seconds``), REANA's job logs mirrored into our step logs, and the declared
    outputs downloaded into the workspace once the workflow finished.
    """

    name = "reana"
    slots_per_project: int | None = None
    survives_restart = False

    def __init__(self, settings: ReanaSettings, servers: ReanaServers, tokens: TokenLookup) -> None:
        self._settings = settings
        self.servers = servers
        self._tokens = tokens
        self.slots = settings.max_active_runs

    async def plan(self, request: PlanRequest) -> Plan:
        """Create the workflow on REANA (so its refusals reach the submitter)."""
        client = self.servers.get(request.server)
        _check_support(request.spec, request.workflow_type)
        token = await self._tokens(request.owner, client.name)
        created = await client.create(token, request.run_name, request.spec)
        ids = {
            "workflow_id": str(created["workflow_id"]),
            "workflow_name": str(created.get("workflow_name") or request.run_name),
            "server": client.name,
        }
        steps = [
            StepPlan(
                position=i,
                name=step_name(s, i),
                image=s.get("environment") if isinstance(s.get("environment"), str) else None,
                execution="reana",
                commands=[str(c) for c in s.get("commands", [])],
            )
            for i, s in enumerate(request.steps)
        ]
        return Plan(steps=steps, backend_ids=ids, server=client.name, credential=token)

    async def _token(self, job: RunJob) -> str:
        if job.credential is None:
            assert job.server is not None
            job.credential = await self._tokens(job.owner, job.server)
        return job.credential

    def _client(self, job: RunJob) -> tuple[ReanaClient, str]:
        return self.servers.get(job.server), job.backend_ids["workflow_id"]

    async def prepare(self, job: RunJob, reporter: RunReporter) -> None:
        """The workspace is staged here first, then uploaded."""
        job.paths.create()

    async def submit(self, job: RunJob, reporter: RunReporter) -> None:
        """Upload the staged workspace and start the workflow."""
        client, workflow_id = self._client(job)
        token = await self._token(job)
        for path in sorted(job.workspace.rglob("*")):
            if path.is_file() and not path.is_symlink():
                if job.cancel.is_set():
                    return
                rel = path.relative_to(job.workspace).as_posix()
                await client.upload(token, workflow_id, rel, path)
        if not job.cancel.is_set():
            await client.start(token, workflow_id, job.parameters)

    async def cancel(self, job: RunJob) -> None:
        """A workflow that never started is deleted on REANA."""
        client, workflow_id = self._client(job)
        with contextlib.suppress(VreError):
            await client.delete(await self._token(job), workflow_id)

    async def watch(self, job: RunJob, reporter: RunReporter) -> ExecutionOutcome:
        """Poll the workflow's status until it ends; stop it on REANA when cancelled."""
        client, workflow_id = self._client(job)
        token = await self._token(job)
        settings = self._settings
        delay = settings.poll_initial_seconds
        last = "queued"
        stop_sent = False
        failing_since: float | None = None
        while True:
            if job.cancel.is_set() and not stop_sent:
                stop_sent = True
                with contextlib.suppress(VreError):
                    await client.stop(token, workflow_id)
            try:
                data = await client.status(token, workflow_id)
                await self._mirror_logs(client, token, workflow_id, job.paths, reporter)
            except BackendError as exc:  # REANA's API is down or slow: the run may be fine
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= settings.poll_outage_seconds:
                    raise
                log.warning(
                    "reana_poll_failed",
                    run_id=job.run_id,
                    error=exc.detail,
                    failing_for=round(now - failing_since, 1),
                )
                data = None
            else:
                failing_since = None
            if data is not None:
                status = REANA_STATUS.get(str(data.get("status")), "running")
                if status != last and status == "running":
                    await reporter.running()
                last = status
                outcome = _ENDINGS.get(status)
                if outcome is not None:
                    return outcome
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await job.cancel.wait()
            if job.cancel.is_set():
                delay = settings.poll_initial_seconds
            else:
                delay = min(delay * settings.poll_factor, settings.poll_max_seconds)

    async def _mirror_logs(
        self,
        client: ReanaClient,
        token: str,
        workflow_id: str,
        paths: RunPaths,
        reporter: RunReporter,
    ) -> None:
        """REANA's job logs → our per-step log files and step records (followers see them)."""
        logs = await client.logs(token, workflow_id)
        jobs = logs.get("job_logs")
        if not isinstance(jobs, dict):
            return
        steps: list[Step] = []
        for index, job in enumerate(j for j in jobs.values() if isinstance(j, dict)):
            text = str(job.get("logs") or "")
            await asyncio.to_thread(_append_new, paths.step_log(index), text)
            steps.append(
                Step(
                    index=index,
                    name=str(job.get("job_name") or index),
                    status=_JOB_STATUS.get(str(job.get("status")), "running"),
                    image=str(job.get("docker_img")) if job.get("docker_img") else None,
                    execution="reana",
                    commands=[str(job["cmd"])] if job.get("cmd") else [],
                    started_at=None,
                    finished_at=None,
                )
            )
        await reporter.steps_seen(steps)

    async def collect(self, job: RunJob) -> None:
        """Download the declared outputs (files, and files under declared directories)."""
        client, workflow_id = self._client(job)
        token = await self._token(job)
        files, directories = declared_outputs(job.spec)
        wanted = set(files)
        if directories:
            for item in await client.files(token, workflow_id):
                name = str(item.get("name", ""))
                if any(name == d or name.startswith(d.rstrip("/") + "/") for d in directories):
                    wanted.add(name)
        for name in sorted(wanted):
            target = inside(job.workspace, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            try:
                async with (
                    client.download(token, workflow_id, name) as body,
                    await anyio.open_file(partial, "wb") as handle,
                ):
                    async for chunk in body:
                        await handle.write(chunk)
            except VreError as exc:
                partial.unlink(missing_ok=True)
                if exc.status == 404:
                    continue  # reported as a missing output
                raise
            os.replace(partial, target)

    async def discard(self, run: Run, requester: str) -> None:
        """Delete the workflow and its workspace on REANA with the requester's token."""
        workflow_id = run.backend_ids.get("workflow_id")
        if not run.reana_server or not workflow_id:
            return
        client = self.servers.get(run.reana_server)
        try:
            await client.delete(await self._tokens(requester, client.name), workflow_id)
        except VreError as exc:
            if exc.status != 404:
                raise

    def interrupted_detail(self, run: Run) -> str:
        """Why the run is interrupted, and where it may still run."""
        workflow_id = run.backend_ids.get("workflow_id")
        if workflow_id:
            return (
                f"the workflows service restarted while the run was {run.status}; its "
                f"monitoring stopped (REANA workflow {workflow_id} on {run.reana_server} may "
                "still be running there)"
            )
        return f"the workflows service restarted while the run was {run.status}"

    async def clean_up(self, run_ids: set[str]) -> None:
        """Nothing runs here."""

    async def ping(self) -> None:
        """Every configured server answers ``/api/ping``."""
        for client in self.servers.clients.values():
            await client.ping()

    async def aclose(self) -> None:
        """Close every client."""
        await self.servers.aclose()


def _check_support(spec: Any, kind: str) -> None:
    workflow = spec.get("workflow", {}) if isinstance(spec, dict) else {}
    if kind != "serial" and "specification" not in workflow:
        raise InvalidSpecificationError(
            f"the REANA backend needs the {kind} specification loaded into "
            "workflow.specification (as reana-client sends it; for CWL: `cwltool --pack`)",
            errors=[
                {
                    "loc": ["spec", "workflow", "specification"],
                    "msg": "required for the REANA backend",
                    "type": "missing",
                }
            ],
        )


def _append_new(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` appending only what is new (REANA sends whole logs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    old = path.read_bytes() if path.exists() else b""
    if data == old:
        return
    if data.startswith(old):
        with path.open("ab") as handle:
            handle.write(data[len(old) :])
    else:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
