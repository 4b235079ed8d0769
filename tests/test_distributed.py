"""The distributed mode, as the images and manifests run it (processes, not containers).

The four services and the gateway each run as their own ``python -m uvicorn --factory
vre_<service>.main:create_app`` process on a loopback port, configured only through environment
variables (the same ones ``docker-compose.yml`` sets): PostgreSQL databases of their own
(migrated beforehand by ``deploy/bin/vre-migrate``; the processes only verify the schema), the
session's real Rucio server, and a real OpenID provider whose tokens every process validates
through discovery and JWKS. The gateway (``VRE_MODE=distributed``) proxies ``/<service>`` over
HTTP, and the workflows and zenodo services reach the datalake through the gateway's URL.
Workflow steps run in a container (podman, the locally built test image): a service that holds
secrets never runs steps on its own host (WorkflowsSettings refuses it).

Through the gateway only: alice uploads an input into her scope, runs a two-step serial
workflow reading it by DID with its outputs registered in her scope, follows its logs until it
ends, lists the outputs and downloads them through ``/datalake/files``, comparing md5 with what
the run reports.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.workflows.tests.test_workflows_containers import IMAGE, podman_conf
from tests.support.distributed import (
    Cluster,
    clean_environment,
    migrate,
    postgres_databases,
    running_cluster,
)
from tests.support.oidc_provider import OidcProvider
from vre_common.postgres import PostgresServer
from vre_common.testing import free_port
from vre_rucio_local import LocalRucio

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]
__all__ = ["podman_conf"]  # the session fixture that builds the test image

SERVICES = ("datalake", "workflows", "catalogue", "zenodo")
MIGRATED = ("gateway", "workflows", "catalogue", "zenodo")
START_TIMEOUT = 45.0


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _auth(prefix: str, issuer: str) -> dict[str, str]:
    return {f"{prefix}AUTH__ISSUERS": json.dumps([issuer]), f"{prefix}AUTH__AUDIENCE": "vre"}


@pytest.fixture(scope="module")
def cluster(
    rucio_server: LocalRucio,
    oidc_provider: OidcProvider,
    postgres_server: PostgresServer,
    podman_conf: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Migrated databases, then the four services and the gateway as five processes."""
    root: Path = tmp_path_factory.mktemp("distributed")
    ports = {name: free_port() for name in (*SERVICES, "gateway")}
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    service_urls = {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
    nowhere = f"http://127.0.0.1:{free_port()}"  # Zenodo: no network here, refused at once
    issuer = oidc_provider.issuer
    with postgres_databases(postgres_server, *MIGRATED) as db:
        environments: dict[str, dict[str, str]] = {
            "datalake": {
                **_auth("VRE_DATALAKE_", issuer),
                "VRE_DATALAKE_RUCIO__URL": rucio_server.url,
                "VRE_DATALAKE_RUCIO__SERVICE_ACCOUNT": rucio_server.admin_account,
                "VRE_DATALAKE_RUCIO__SERVICE_USERNAME": rucio_server.admin_username,
                "VRE_DATALAKE_RUCIO__SERVICE_PASSWORD": rucio_server.admin_password,
                "VRE_DATALAKE_STORAGE__DEFAULT_RSE": rucio_server.rse_names[0],
                "VRE_DATALAKE_GATEWAY_URL": gateway,
                "VRE_DATALAKE_PROVENANCE__OUTBOX_PATH": str(root / "datalake" / "outbox.sqlite"),
            },
            "workflows": {
                **_auth("VRE_WORKFLOWS_", issuer),
                "VRE_WORKFLOWS_DATABASE__URL": db["workflows"],
                "VRE_WORKFLOWS_RUN_MIGRATIONS": "false",
                "VRE_WORKFLOWS_DATA_DIR": str(root / "workflows" / "data"),
                "VRE_WORKFLOWS_DATALAKE__URL": f"{gateway}/datalake",
                "VRE_WORKFLOWS_GATEWAY_URL": gateway,
                "VRE_WORKFLOWS_LOCAL__CONTAINERS__CONTAINERS_CONF": str(podman_conf),
                "VRE_WORKFLOWS_LOCAL__CONTAINERS__PULL_POLICY": "never",
                "VRE_WORKFLOWS_REANA__CREDENTIALS_KEY": _fernet_key(),
            },
            "catalogue": {
                **_auth("VRE_CATALOGUE_", issuer),
                "VRE_CATALOGUE_DATABASE__URL": db["catalogue"],
                "VRE_CATALOGUE_MIGRATIONS": "verify",
                "VRE_CATALOGUE_GATEWAY_URL": gateway,
                "VRE_CATALOGUE_ZENODO__URL": nowhere,
            },
            "zenodo": {
                **_auth("VRE_ZENODO_", issuer),
                "VRE_ZENODO_DATABASE__URL": db["zenodo"],
                "VRE_ZENODO_MIGRATIONS": "verify",
                "VRE_ZENODO_DATA_DIR": str(root / "zenodo" / "data"),
                "VRE_ZENODO_CREDENTIALS_KEY": _fernet_key(),
                "VRE_ZENODO_ZENODO__URL": nowhere,
                "VRE_ZENODO_DATALAKE__URL": f"{gateway}/datalake",
                "VRE_ZENODO_WORKFLOWS__URL": f"{gateway}/workflows",
                "VRE_ZENODO_CATALOGUE__URL": f"{gateway}/catalogue",
                "VRE_ZENODO_GATEWAY_URL": gateway,
            },
            "gateway": {
                **_auth("VRE_", issuer),
                "VRE_MODE": "distributed",
                "VRE_HOST": "127.0.0.1",
                "VRE_PORT": str(ports["gateway"]),
                "VRE_PUBLIC_URL": gateway,
                "VRE_DATABASE__URL": db["gateway"],
                "VRE_MIGRATIONS": "verify",
                "VRE_SERVICE_URLS": json.dumps(service_urls),
            },
        }
        envs = {
            name: clean_environment(VRE_DATA=str(root / name / "vre-data"), **env)
            for name, env in environments.items()
        }
        (root / "migrations").mkdir()
        migrate({name: envs[name] for name in MIGRATED}, root / "migrations")

        with running_cluster(root, ports, envs, START_TIMEOUT) as running:
            yield running


async def _get_json(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Any:
    answer = await http.get(path, headers=headers)
    assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text}"
    return answer.json()


async def test_upload_run_output_through_distributed_gateway(
    cluster: Cluster, oidc_provider: OidcProvider
) -> None:
    try:
        await _scenario(cluster.gateway.url, oidc_provider)
    except BaseException:
        print(cluster.report())
        raise


async def _scenario(url: str, oidc_provider: OidcProvider) -> None:
    token = await oidc_provider.apassword_token("alice", scope="openid profile wlcg.groups")
    alice = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        # --- the gateway reports every service (and what they depend on) up
        ready = await http.get("/readyz")
        states = {d["name"]: d for d in ready.json()["dependencies"]}
        assert ready.status_code == 200, ready.text
        for name in ("gateway", "gateway.database", *SERVICES):
            assert states[name]["up"], states[name]
        assert states["datalake.rucio"]["up"], states
        openapi = await _get_json(http, "/openapi.json", {})
        assert openapi["info"]["title"].startswith("VRE")
        assert "/projects" in openapi["paths"]
        # the services' documents are fetched and merged as they come up
        for _ in range(50):
            if all(f"/{s}/healthz" in openapi["paths"] for s in ("datalake", "workflows")):
                break
            await asyncio.sleep(0.2)
            openapi = await _get_json(http, "/openapi.json", {})
        assert "/datalake/files/{scope}/{name}" in openapi["paths"]
        assert "/workflows/runs" in openapi["paths"]
        assert "/catalogue/software" in openapi["paths"]
        assert "/zenodo/depositions" in openapi["paths"]

        # --- alice uploads an input file into her own scope
        me = await _get_json(http, "/datalake/scopes/mine", alice)
        scope = me["scope"]
        folder = f"dist-{uuid.uuid4().hex[:8]}"
        numbers = b"".join(f"{n}\n".encode() for n in (5, 3, 9, 1, 7))
        uploaded = await http.put(
            f"/datalake/files/{scope}/{folder}/numbers.txt", content=numbers, headers=alice
        )
        assert uploaded.status_code in (200, 201), uploaded.text

        # --- a two-step serial workflow reads it by DID; outputs registered in her scope
        spec = {
            "version": "0.9.4",
            "inputs": {"parameters": {}},
            "workflow": {
                "type": "serial",
                "specification": {
                    "steps": [
                        {
                            "name": "sort",
                            "environment": IMAGE,
                            "commands": ["sort -n numbers.txt > sorted.txt", "echo sorted"],
                        },
                        {
                            "name": "count",
                            "environment": IMAGE,
                            "commands": ["mkdir -p results && wc -l < sorted.txt > results/n.txt"],
                        },
                    ]
                },
            },
            "outputs": {"files": ["sorted.txt", "results/n.txt"]},
        }
        submitted = await http.post(
            "/workflows/runs",
            json={
                "spec": spec,
                "inputs": [{"did": f"{scope}:{folder}/numbers.txt"}],
                "output": {"scope": scope},
                "name": "distributed",
            },
            headers=alice,
        )
        assert submitted.status_code == 201, submitted.text
        run_id = submitted.json()["id"]

        # --- follow its logs (streamed through the gateway) until the run ends
        async with http.stream(
            "GET", f"/workflows/runs/{run_id}/logs", params={"follow": "true"}, headers=alice
        ) as logs:
            assert logs.status_code == 200, await logs.aread()
            text = "".join([chunk async for chunk in logs.aiter_text()])
        assert "sorted" in text, text
        deadline = time.monotonic() + 30
        while True:
            run = await _get_json(http, f"/workflows/runs/{run_id}", alice)
            if run["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert run["status"] == "finished", run

        # --- its outputs, downloaded by DID through the datalake, match what the run reports
        listed = await _get_json(http, f"/workflows/runs/{run_id}/outputs", alice)
        outputs = {item["path"]: item for item in listed["items"]}
        assert set(outputs) == {"sorted.txt", "results/n.txt"}, listed
        expected = {"sorted.txt": b"1\n3\n5\n7\n9\n", "results/n.txt": b"5\n"}
        for path, item in outputs.items():
            did = item["did"]
            assert did, item
            assert did.startswith(f"{scope}:"), item
            did_scope, name = did.split(":", 1)
            download = await http.get(f"/datalake/files/{did_scope}/{name}", headers=alice)
            assert download.status_code == 200, download.text
            assert hashlib.md5(download.content).hexdigest() == item["md5"], (path, item)
            assert download.content.strip() == expected[path].strip(), download.content
