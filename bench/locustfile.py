"""Locust users of the load benchmark (bench/load.py runs ``locust --headless`` on this file).

``LOAD_FIXTURES`` names a JSON file written by bench/load.py: one entry per account with its
token, its user scope, its project's scope, files to read and runs to poll. Each simulated
user takes the next account in turn (200 users over 20 accounts: 10 per account).

- ``MixedUser``: the mixed workload — DID listings, one DID's metadata, small uploads (1–16
  KiB, half into the user's scope, half into the project's), run submissions (one ``echo``
  step) and status polls of the user's runs;
- ``HealthUser``: ``GET /healthz`` with the same pacing (the baseline).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

FIXTURES: list[dict[str, Any]] = json.loads(Path(os.environ["LOAD_FIXTURES"]).read_text())
_next_account = itertools.count()
SPEC = {
    "version": "0.9.4",
    "inputs": {"parameters": {}},
    "workflow": {
        "type": "serial",
        "specification": {
            "steps": [
                {
                    "name": "hello",
                    "environment": "docker.io/library/debian:bookworm-slim",
                    "commands": ["echo hello"],
                }
            ]
        },
    },
}


def _judge(response: Any, ok: int = 200) -> bool:
    """Mark a failed answer with its status and the problem's detail (what the report shows)."""
    if response.status_code == ok:
        response.success()
        return True
    detail = ""
    try:
        detail = str(response.json().get("detail", ""))[:160]
    except Exception:  # not JSON (a refused connection, a proxy's page): its text
        detail = (response.text or "")[:160]
    response.failure(f"{response.status_code}: {detail}")
    return False


class MixedUser(FastHttpUser):
    """One researcher: lists, reads metadata, uploads small files, submits and polls runs."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        account = FIXTURES[next(_next_account) % len(FIXTURES)]
        self.headers = {"Authorization": f"Bearer {account['token']}"}
        self.scopes = [account["scope"], account["project_scope"]]
        self.files: list[str] = list(account["files"])
        self.runs: list[str] = list(account["runs"])
        self.rng = random.Random()

    @task(6)
    def list_dids(self) -> None:
        scope = self.rng.choice(self.scopes)
        with self.client.get(
            f"/datalake/dids/{scope}?name=load-*&limit=100",
            headers=self.headers,
            name="list",
            catch_response=True,
        ) as response:
            _judge(response)

    @task(6)
    def metadata(self) -> None:
        did = self.rng.choice(self.files)
        scope, _, name = did.partition(":")
        with self.client.get(
            f"/datalake/dids/{scope}/{name}",
            headers=self.headers,
            name="metadata",
            catch_response=True,
        ) as response:
            _judge(response)

    @task(3)
    def small_upload(self) -> None:
        scope = self.rng.choice(self.scopes)
        name = f"load-{uuid.uuid4().hex[:12]}.bin"
        body = self.rng.randbytes(self.rng.randint(1024, 16384))
        with self.client.put(
            f"/datalake/files/{scope}/{name}",
            data=body,  # type: ignore[arg-type]  # bytes are documented; the hint is narrower
            headers=self.headers,
            name="small upload",
            catch_response=True,
        ) as response:
            if _judge(response, 201):
                self.files.append(f"{scope}:{name}")

    @task(1)
    def submit_run(self) -> None:
        with self.client.post(
            "/workflows/runs",
            json={"spec": SPEC},
            headers=self.headers,
            name="run submission",
            catch_response=True,
        ) as response:
            if _judge(response, 201):
                self.runs.append(str(response.json()["id"]))

    @task(4)
    def poll_status(self) -> None:
        run_id = self.rng.choice(self.runs[-20:])
        with self.client.get(
            f"/workflows/runs/{run_id}",
            headers=self.headers,
            name="status poll",
            catch_response=True,
        ) as response:
            _judge(response)


class HealthUser(FastHttpUser):
    """The baseline: the cheapest request, at the same pace."""

    wait_time = between(1, 3)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="healthz")
