"""Helpers of the workflows tests: a harness around the app, waiting for runs, real servers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.workflows.tests.support.datalake import PosixDatalake
from vre_common.testing import TestIssuer, free_port
from vre_workflows.factory import Factory

TERMINAL = ("finished", "failed", "cancelled", "interrupted", "deleted")


def serial_spec(
    steps: list[dict[str, Any]],
    *,
    parameters: dict[str, Any] | None = None,
    outputs: list[str] | None = None,
    directories: list[str] | None = None,
) -> dict[str, Any]:
    """A reana.yaml (as an object) of a serial workflow."""
    spec: dict[str, Any] = {
        "version": "0.9.4",
        "inputs": {"parameters": parameters or {}},
        "workflow": {"type": "serial", "specification": {"steps": steps}},
    }
    out: dict[str, Any] = {}
    if outputs:
        out["files"] = outputs
    if directories:
        out["directories"] = directories
    if out:
        spec["outputs"] = out
    return spec


def step(
    name: str, *commands: str, image: str = "docker.io/library/debian:bookworm-slim", **extra: Any
) -> dict[str, Any]:
    """One serial step."""
    return {"name": name, "environment": image, "commands": list(commands), **extra}


@dataclass
class Harness:
    """The app, a client calling it in-process, and what the tests poke at."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: TestIssuer
    datalake: PosixDatalake

    @property
    def factory(self) -> Factory:
        built: Factory = self.app.state.factory
        return built

    def headers(self, user: str = "alice") -> dict[str, str]:
        return self.issuer.headers(user)

    async def submit(self, user: str = "alice", expect: int = 201, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/runs", json=body, headers=self.headers(user))
        assert response.status_code == expect, response.text
        data: dict[str, Any] = response.json()
        return data

    async def get(self, run_id: str, user: str = "alice") -> dict[str, Any]:
        response = await self.client.get(f"/runs/{run_id}", headers=self.headers(user))
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def wait(
        self,
        run_id: str,
        statuses: tuple[str, ...] = TERMINAL,
        *,
        within: float = 60.0,
        user: str = "alice",
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            run = await self.get(run_id, user)
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {within} s")
            await asyncio.sleep(0.05)

    async def wait_step(
        self, run_id: str, index: int, status: str = "running", within: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            run = await self.get(run_id)
            steps = run["steps"]
            if len(steps) > index and steps[index]["status"] == status:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"step {index} of {run_id} never became {status}: {steps}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` over real HTTP on 127.0.0.1 (streams are not buffered) in this loop."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
