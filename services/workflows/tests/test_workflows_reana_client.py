"""The official reana-client (0.9.x, bravado: it validates answers too) drives the stand-in.

This proves the stand-in faithful to what real REANA clients expect. reana-client cannot share
the project environment (it pins old jsonschema/bravado and snakemake 7): it lives in
``.venv-reana-client`` (reana-client>=0.9.6,<0.10). The test is skipped, saying so, when that
environment has not been built.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from services.workflows.tests.support.helpers import serve
from services.workflows.tests.support.reana_standin import ReanaStandIn

CLIENT_PYTHON = Path(
    os.environ.get(
        "VRE_REANA_CLIENT_PYTHON", str(Path(sys.prefix).parent / ".venv-reana-client/bin/python")
    )
)

pytestmark = pytest.mark.skipif(
    not CLIENT_PYTHON.exists(),
    reason=f"reana-client is not installed ({CLIENT_PYTHON} missing): build .venv-reana-client "
    "from requirements/reana-client.in (reana-client>=0.9.6,<0.10)",
)

SCRIPT = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
from reana_client.api import client

token = os.environ["REANA_ACCESS_TOKEN"]
spec = json.loads(os.environ["SPEC"])
out = {}
client.ping(token)                      # primes the client (its URL singleton lags one call)
out["ping"] = client.ping(token)
created = client.create_workflow(spec, "clientflow", token)
wid = created["workflow_id"]
out["created"] = created
out["upload"] = client.upload_file(wid, b"21\n", "data/in.txt", token)
out["start"] = client.start_workflow(wid, token, {"input_parameters": {"factor": 2}})
for _ in range(200):
    status = client.get_workflow_status(wid, token)
    if status["status"] in ("finished", "failed"):
        break
    time.sleep(0.05)
out["status"] = status
out["files"] = client.list_files(wid, token)
content, name, zipped = client.download_file(wid, "out.txt", token)
out["download"] = [content.decode(), name, zipped]
out["logs"] = json.loads(client.get_workflow_logs(wid, token)["logs"])
out["list"] = client.get_workflows(token, "batch")
try:
    client.get_workflow_status("no-such-workflow", token)
except Exception as exc:
    out["missing"] = str(exc)
out["bad_token"] = client.ping("bad-token")
print(json.dumps(out, default=str))
"""


async def test_reana_client_drives_the_standin() -> None:
    standin = ReanaStandIn()
    standin.add_user("client-token", "dora")
    spec = {
        "inputs": {"files": ["data/in.txt"], "parameters": {"factor": 1}},
        "workflow": {
            "type": "serial",
            "specification": {
                "steps": [
                    {
                        "name": "double",
                        "environment": "docker.io/library/bash:5",
                        "commands": ["echo $$(( $$(cat data/in.txt) * ${factor} )) > out.txt"],
                    }
                ]
            },
        },
        "outputs": {"files": ["out.txt"]},
    }
    async with serve(standin.app) as url:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "REANA_SERVER_URL": url,
            "REANA_ACCESS_TOKEN": "client-token",
            "SPEC": json.dumps(spec),
        }
        process = await asyncio.create_subprocess_exec(
            str(CLIENT_PYTHON),
            "-c",
            SCRIPT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    standin.close()
    assert process.returncode == 0, stderr.decode()[-3000:]
    out = json.loads(stdout.decode().strip().splitlines()[-1])
    assert out["ping"]["status"] == "Connected"  # reana-client's ping calls /api/you
    assert out["ping"]["email"] == "dora@example.org"
    assert out["created"]["workflow_name"] == "clientflow.1"
    assert out["start"]["status"] == "queued"
    assert out["status"]["status"] == "finished"
    assert {f["name"] for f in out["files"]} == {"data/in.txt", "out.txt"}
    assert out["download"][0] == "42\n"
    assert out["download"][1] == "out.txt"
    (job,) = out["logs"]["job_logs"].values()
    assert job["job_name"] == "double"
    assert [w["name"] for w in out["list"]] == ["clientflow.1"]
    assert "does not exist" in out["missing"]
    assert out["bad_token"] == {"status": "ERROR: INVALID ACCESS TOKEN", "error": True}
    assert standin.violations == []
