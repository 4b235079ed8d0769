"""A REANA 0.9 server stand-in that obeys the official spec (reana_server.json in reana-commons).

Every response it sends is checked against the spec before it leaves: the status code must be
one the operation declares, and a JSON body must validate against the declared schema
(Swagger 2.0 schemas, checked with JSON Schema draft 4 semantics; ``x-nullable`` honoured).
Violations are collected in ``violations`` (tests assert it stays empty) instead of being
hidden. Serial workflows really run: each command is a ``bash -c`` in the workflow's own
workspace folder, one REANA "job" per command, as REANA's serial engine does.

Users are tokens; a user can be marked over quota (REANA's 403 "User quota exceeded" text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from jsonschema import Draft4Validator

SPEC_FILE = next(
    (Path(sys.prefix).parent / ".venv-reana" / "lib").glob(
        "python3*/site-packages/reana_commons/openapi_specifications/reana_server.json"
    ),
    None,
)


def _nullable(schema: Any) -> Any:
    """Swagger's ``x-nullable: true`` → JSON Schema's ``type: [t, "null"]``."""
    if isinstance(schema, dict):
        out = {k: _nullable(v) for k, v in schema.items()}
        if out.get("x-nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [_nullable(v) for v in schema]
    return schema


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _human(size: int) -> str:
    return f"{size} Bytes" if size < 1024 else f"{size / 1024:.0f} KiB"


@dataclass
class Job:
    job_id: str
    name: str
    cmd: str
    image: str
    status: str = "created"
    logs: str = ""
    started_at: str | None = None
    finished_at: str | None = None


@dataclass
class Workflow:
    id: str
    name: str
    run_number: int
    user: str
    spec: dict[str, Any]
    workspace: Path
    status: str = "created"
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    jobs: list[Job] = field(default_factory=list)
    engine_logs: str = ""
    task: asyncio.Task[None] | None = None


@dataclass
class User:
    id: str
    username: str
    email: str
    quota_exceeded: bool = False


class ReanaStandIn:
    """The stand-in's state and its FastAPI app (serve it with a real HTTP server)."""

    def __init__(self, *, job_delay: float = 0.0) -> None:
        if SPEC_FILE is None:
            raise RuntimeError(
                "reana_server.json not found: build the validator environment with "
                "`make .venv-reana/.stamp`"
            )
        self.spec = json.loads(SPEC_FILE.read_text())
        self.users: dict[str, User] = {}
        self.workflows: dict[str, Workflow] = {}
        self.violations: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.uploads: dict[str, list[str]] = {}
        self.job_delay = job_delay
        self._root = Path(tempfile.mkdtemp(prefix="reana-standin-"))
        self._validators: dict[tuple[str, str, str], Draft4Validator] = {}
        self.app = self._build()

    def add_user(self, token: str, username: str, *, quota_exceeded: bool = False) -> User:
        user = User(str(uuid.uuid4()), username, f"{username}@example.org", quota_exceeded)
        self.users[token] = user
        return user

    def close(self) -> None:
        for wf in self.workflows.values():
            if wf.task is not None:
                wf.task.cancel()
        shutil.rmtree(self._root, ignore_errors=True)

    # ------------------------------------------------------------------ spec enforcement

    def respond(self, path: str, method: str, status: int, body: Any = None) -> Response:
        """Send ``body`` as operation (path, method) answer ``status``, checked by the spec."""
        operation = self.spec["paths"][path][method]
        declared = operation["responses"].get(str(status))
        if declared is None:
            self.violations.append(f"{method.upper()} {path}: status {status} not declared")
        elif body is not None and "schema" in declared and declared["schema"].get("type") != "file":
            key = (path, method, str(status))
            validator = self._validators.get(key)
            if validator is None:
                validator = Draft4Validator(_nullable(declared["schema"]))
                self._validators[key] = validator
            for error in validator.iter_errors(body):
                self.violations.append(
                    f"{method.upper()} {path} {status}: {error.message} at "
                    f"{list(error.absolute_path)}"
                )
        if body is None:
            return Response(status_code=status)
        return JSONResponse(body, status_code=status)

    def _user(self, request: Request, path: str, method: str) -> User | Response:
        token = request.query_params.get("access_token")
        if not token:
            return self.respond(path, method, 403, {"message": "User not signed in"})
        user = self.users.get(token)
        if user is None:
            return self.respond(path, method, 403, {"message": "Token not valid."})
        return user

    def _workflow(self, user: User, ref: str, path: str, method: str) -> Workflow | Response:
        wf = self.workflows.get(ref) or next(
            (w for w in self.workflows.values() if f"{w.name}.{w.run_number}" == ref), None
        )
        if wf is None or wf.status == "deleted":
            return self.respond(path, method, 404, {"message": f"Workflow {ref} does not exist"})
        if wf.user != user.id:
            return self.respond(
                path,
                method,
                403,
                {"message": f"User {user.id} is not allowed to access workflow {ref}"},
            )
        return wf

    def _quota(self, user: User, path: str, method: str) -> Response | None:
        if not user.quota_exceeded:
            return None
        return self.respond(
            path,
            method,
            403,
            {
                "message": "User quota exceeded.\nResource: disk, usage: 55 MB out of 50 MB used\n"
                "Please see: https://docs.reana.io/advanced-usage/user-quotas/"
            },
        )

    # ------------------------------------------------------------------ execution

    async def _execute(self, wf: Workflow) -> None:
        wf.status = "running"
        wf.started = _now()
        wf.engine_logs += "workflow started\n"
        steps = wf.spec.get("workflow", {}).get("specification", {}).get("steps", [])
        parameters = wf.spec.get("inputs", {}).get("parameters", {})
        from string import Template

        for index, step in enumerate(steps):
            for cmd in step.get("commands", []):
                job = Job(
                    job_id=str(uuid.uuid4()),
                    name=str(step.get("name", index)),
                    cmd=Template(cmd).safe_substitute(parameters),
                    image=str(step.get("environment", "")),
                )
                wf.jobs.append(job)
                job.status = "running"
                job.started_at = _now()
                if self.job_delay:
                    await asyncio.sleep(self.job_delay)
                process = await asyncio.create_subprocess_exec(
                    "bash",
                    "-c",
                    job.cmd,
                    cwd=wf.workspace,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    out, _ = await process.communicate()
                except asyncio.CancelledError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
                    job.status = "stopped"
                    raise
                job.logs = out.decode(errors="replace")
                job.finished_at = _now()
                if process.returncode != 0:
                    job.status = "failed"
                    wf.status = "failed"
                    wf.finished = _now()
                    wf.engine_logs += f"job {job.name} failed\n"
                    return
                job.status = "finished"
        wf.status = "finished"
        wf.finished = _now()
        wf.engine_logs += "workflow finished\n"

    def _progress(self, wf: Workflow) -> dict[str, Any]:
        def group(status: str) -> dict[str, Any]:
            ids = [j.job_id for j in wf.jobs if j.status == status]
            return {"job_ids": ids, "total": len(ids)}

        current = next((j for j in wf.jobs if j.status == "running"), None)
        return {
            "current_command": current.cmd if current else None,
            "current_step_name": current.name if current else None,
            "failed": group("failed"),
            "finished": group("finished"),
            "running": group("running"),
            "total": {"job_ids": [j.job_id for j in wf.jobs], "total": len(wf.jobs)},
            "run_started_at": wf.started,
            "run_finished_at": wf.finished,
        }

    # ------------------------------------------------------------------ the app

    def _build(self) -> FastAPI:
        app = FastAPI()
        standin = self

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Response:
            standin.requests.append((request.method, request.url.path))
            response: Response = await call_next(request)
            return response

        @app.get("/api/ping")
        async def ping() -> Response:
            return standin.respond("/api/ping", "get", 200, {"message": "OK", "status": "200"})

        @app.get("/api/you")
        async def you(request: Request) -> Response:
            user = standin._user(request, "/api/you", "get")
            if isinstance(user, Response):
                return user
            return standin.respond(
                "/api/you",
                "get",
                200,
                {
                    "email": user.email,
                    "full_name": user.username.title(),
                    "username": user.username,
                    "reana_server_version": "0.9.4",
                    "reana_token": {"requested_at": _now(), "status": "active", "value": "***"},
                    "quota": {
                        "disk": {
                            "health": "critical" if user.quota_exceeded else "healthy",
                            "limit": {"human_readable": "50 MB", "raw": 52430000},
                            "usage": {
                                "human_readable": "55 MB" if user.quota_exceeded else "1 MB",
                                "raw": 57000000 if user.quota_exceeded else 1000000,
                            },
                        },
                    },
                },
            )

        @app.get("/api/workflows")
        async def list_workflows(request: Request) -> Response:
            user = standin._user(request, "/api/workflows", "get")
            if isinstance(user, Response):
                return user
            items = [
                {
                    "id": w.id,
                    "name": f"{w.name}.{w.run_number}",
                    "status": w.status,
                    "created": w.created,
                    "user": w.user,
                    "size": {"raw": 0, "human_readable": "0 Bytes"},
                    "progress": standin._progress(w),
                }
                for w in standin.workflows.values()
                if w.user == user.id and w.status != "deleted"
            ]
            return standin.respond(
                "/api/workflows", "get", 200, {"items": items, "total": len(items)}
            )

        @app.post("/api/workflows")
        async def create(request: Request) -> Response:
            path = "/api/workflows"
            user = standin._user(request, path, "post")
            if isinstance(user, Response):
                return user
            if (refused := standin._quota(user, path, "post")) is not None:
                return refused
            name = request.query_params.get("workflow_name", "")
            try:
                spec = json.loads(await request.body())
            except ValueError:
                return standin.respond(path, "post", 400, {"message": "Malformed request."})
            if "." in name or not isinstance(spec, dict) or "workflow" not in spec:
                return standin.respond(path, "post", 400, {"message": "Invalid workflow."})
            run_number = 1 + sum(
                1 for w in standin.workflows.values() if w.name == name and w.user == user.id
            )
            wf_id = str(uuid.uuid4())
            workspace = standin._root / wf_id
            workspace.mkdir(parents=True)
            wf = Workflow(wf_id, name, run_number, user.id, spec, workspace)
            standin.workflows[wf_id] = wf
            return standin.respond(
                path,
                "post",
                201,
                {
                    "message": "The workflow has been successfully created.",
                    "workflow_id": wf_id,
                    "workflow_name": f"{name}.{run_number}",
                },
            )

        @app.post("/api/workflows/{ref}/workspace")
        async def upload(ref: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/workspace"
            user = standin._user(request, path, "post")
            if isinstance(user, Response):
                return user
            wf = standin._workflow(user, ref, path, "post")
            if isinstance(wf, Response):
                return wf
            name = request.query_params.get("file_name")
            if not name or name.startswith("/") or ".." in name.split("/"):
                return standin.respond(path, "post", 400, {"message": "No file_name provided"})
            target = wf.workspace / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as handle:
                async for chunk in request.stream():
                    handle.write(chunk)
            standin.uploads.setdefault(wf.id, []).append(name)
            return standin.respond(
                path,
                "post",
                200,
                {"message": f"{name} has been successfully transferred."},
            )

        @app.get("/api/workflows/{ref}/workspace")
        async def files(ref: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/workspace"
            user = standin._user(request, path, "get")
            if isinstance(user, Response):
                return user
            wf = standin._workflow(user, ref, path, "get")
            if isinstance(wf, Response):
                return wf
            page = int(request.query_params.get("page", "1"))
            size = int(request.query_params.get("size", "1000"))
            everything = sorted(p for p in wf.workspace.rglob("*") if p.is_file())
            chunk = everything[(page - 1) * size : page * size]
            items = [
                {
                    "name": p.relative_to(wf.workspace).as_posix(),
                    "size": {"raw": p.stat().st_size, "human_readable": _human(p.stat().st_size)},
                    "last-modified": datetime.fromtimestamp(p.stat().st_mtime, UTC)
                    .replace(tzinfo=None)
                    .isoformat(timespec="seconds"),
                }
                for p in chunk
            ]
            return standin.respond(path, "get", 200, {"items": items, "total": len(everything)})

        @app.get("/api/workflows/{ref}/workspace/{file_name:path}")
        async def download(ref: str, file_name: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/workspace/{file_name}"
            user = standin._user(request, path, "get")
            if isinstance(user, Response):
                return user
            wf = standin._workflow(user, ref, path, "get")
            if isinstance(wf, Response):
                return wf
            target = wf.workspace / file_name
            if ".." in file_name.split("/") or not target.is_file():
                return standin.respond(path, "get", 404, {"message": f"{file_name} does not exist"})
            standin.respond(path, "get", 200)
            return Response(
                target.read_bytes(),
                media_type="application/octet-stream",
                headers={"Content-Disposition": f"attachment; filename={target.name}"},
            )

        @app.post("/api/workflows/{ref}/start")
        async def start(ref: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/start"
            user = standin._user(request, path, "post")
            if isinstance(user, Response):
                return user
            if (refused := standin._quota(user, path, "post")) is not None:
                return refused
            wf = standin._workflow(user, ref, path, "post")
            if isinstance(wf, Response):
                return wf
            if wf.status != "created":
                return standin.respond(
                    path,
                    "post",
                    409,
                    {
                        "message": f"Workflow {wf.id} could not be started because it is already "
                        f"{wf.status}."
                    },
                )
            body = json.loads(await request.body() or b"{}")
            overrides = body.get("input_parameters") or {}
            wf.spec.setdefault("inputs", {}).setdefault("parameters", {}).update(overrides)
            wf.status = "queued"
            wf.task = asyncio.create_task(standin._execute(wf))
            return standin.respond(
                path,
                "post",
                200,
                {
                    "message": "Workflow submitted.",
                    "workflow_id": wf.id,
                    "workflow_name": f"{wf.name}.{wf.run_number}",
                    "status": "queued",
                    "user": user.id,
                },
            )

        @app.get("/api/workflows/{ref}/status")
        async def status(ref: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/status"
            user = standin._user(request, path, "get")
            if isinstance(user, Response):
                return user
            wf = standin._workflow(user, ref, path, "get")
            if isinstance(wf, Response):
                return wf
            return standin.respond(
                path,
                "get",
                200,
                {
                    "id": wf.id,
                    "name": f"{wf.name}.{wf.run_number}",
                    "status": wf.status,
                    "created": wf.created,
                    "user": user.id,
                    "logs": "",
                    "progress": standin._progress(wf),
                },
            )

        @app.put("/api/workflows/{ref}/status")
        async def set_status(ref: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/status"
            user = standin._user(request, path, "put")
            if isinstance(user, Response):
                return user
            wf = standin._workflow(user, ref, path, "put")
            if isinstance(wf, Response):
                return wf
            wanted = request.query_params.get("status")
            if wanted == "stop":
                if wf.status not in ("queued", "running"):
                    return standin.respond(
                        path,
                        "put",
                        409,
                        {"message": f"Workflow {wf.id} is not running."},
                    )
                if wf.task is not None:
                    wf.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await wf.task
                wf.status = "stopped"
                wf.finished = _now()
            elif wanted == "deleted":
                if wf.task is not None and not wf.task.done():
                    return standin.respond(
                        path, "put", 409, {"message": "Workflow is still running."}
                    )
                wf.status = "deleted"
                shutil.rmtree(wf.workspace, ignore_errors=True)
            else:
                return standin.respond(path, "put", 400, {"message": "Malformed request."})
            return standin.respond(
                path,
                "put",
                200,
                {
                    "message": f"Workflow successfully {wanted}",
                    "workflow_id": wf.id,
                    "workflow_name": f"{wf.name}.{wf.run_number}",
                    "status": wf.status,
                    "user": user.id,
                },
            )

        @app.get("/api/workflows/{ref}/logs")
        async def logs(ref: str, request: Request) -> Response:
            path = "/api/workflows/{workflow_id_or_name}/logs"
            user = standin._user(request, path, "get")
            if isinstance(user, Response):
                return user
            wf = standin._workflow(user, ref, path, "get")
            if isinstance(wf, Response):
                return wf
            job_logs = {
                j.job_id: {
                    "workflow_uuid": wf.id,
                    "job_name": j.name,
                    "compute_backend": "Kubernetes",
                    "backend_job_id": j.job_id,
                    "docker_img": j.image,
                    "cmd": j.cmd,
                    "status": j.status,
                    "logs": j.logs,
                    "started_at": j.started_at,
                    "finished_at": j.finished_at,
                }
                for j in wf.jobs
            }
            encoded = json.dumps(
                {"workflow_logs": wf.engine_logs, "job_logs": job_logs, "engine_specific": None}
            )
            return standin.respond(
                path,
                "get",
                200,
                {
                    "logs": encoded,
                    "user": user.id,
                    "workflow_id": wf.id,
                    "workflow_name": f"{wf.name}.{wf.run_number}",
                },
            )

        return app
