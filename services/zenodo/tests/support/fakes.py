"""Small stand-ins for the VRE services the zenodo service reads: workflows and catalogue.

They answer the documented shapes: ``GET /runs/{id}`` (the workflows service's ``Run``
model: ``outputs: [{path, bytes, md5, did}]``), ``GET /runs/{id}/record`` (its ``RunRecord``,
set in ``records`` or made of the run) and ``GET /software/{id}/zenodo`` (the
catalogue's ``ZenodoExport``: ``{"metadata": {…}}``), and insist on a bearer token.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class VreServicesFake:
    """Runs and software entries, set by the tests; ``seen_tokens`` records who called."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.software: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.seen_tokens: list[str] = []
        self.workflows = self._workflows()
        self.catalogue = self._catalogue()

    def _token(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None
        token = header[7:]
        self.seen_tokens.append(token)
        return token

    def _workflows(self) -> FastAPI:
        app = FastAPI(openapi_url=None)

        @app.get("/runs/{run_id}")
        async def get_run(run_id: str, request: Request) -> JSONResponse:
            if self._token(request) is None:
                return _problem(401, "missing bearer token")
            run = self.runs.get(run_id)
            if run is None:
                return _problem(404, f"no run {run_id}")
            return JSONResponse(run)

        @app.get("/runs/{run_id}/record")
        async def get_record(run_id: str, request: Request) -> JSONResponse:
            if self._token(request) is None:
                return _problem(401, "missing bearer token")
            run = self.runs.get(run_id)
            if run is None:
                return _problem(404, f"no run {run_id}")
            return JSONResponse(self.records.get(run_id) or _record_of(run))

        return app

    def _catalogue(self) -> FastAPI:
        app = FastAPI(openapi_url=None)

        @app.get("/software/{software_id}/zenodo")
        async def export(software_id: str, request: Request) -> JSONResponse:
            if self._token(request) is None:
                return _problem(401, "missing bearer token")
            entry = self.software.get(software_id)
            if entry is None:
                return _problem(404, f"no software {software_id}")
            return JSONResponse({"metadata": entry})

        return app


def _record_of(run: dict[str, Any]) -> dict[str, Any]:
    """A run record (``GET /runs/{id}/record``) made of what the run dict holds."""
    outputs = [
        {"path": o["path"], "did": o.get("did"), "kind": "output", "bytes": o.get("bytes"),
         "md5": o.get("md5"), "adler32": o.get("adler32")}
        for o in run.get("outputs", [])
    ]  # fmt: skip
    return {
        "kind": "vre-run-record",
        "schema_version": 1,
        "vre_version": "0.1.0",
        "run_id": run["id"],
        "name": run.get("name", run["id"]),
        "workflow_type": "serial",
        "backend": "local",
        "spec": run.get("spec", {"version": "0.9.4", "workflow": {"type": "serial"}}),
        "spec_sha256": run.get("spec_sha256", "0" * 64),
        "parameters": run.get("parameters", {}),
        "inputs": run.get("inputs", []),
        "outputs": outputs,
    }


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": "error", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )
