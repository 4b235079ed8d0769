"""Small stand-ins for the VRE services the zenodo service reads: workflows and catalogue.

They answer the documented shapes: ``GET /runs/{id}`` (the workflows service's ``Run``
model: ``outputs: [{path, bytes, md5, did}]``) and ``GET /software/{id}/zenodo`` (the
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


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": "error", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )
