"""Many researchers at once against the embedded VRE (issue 18): nothing lost, no 5xx.

The gateway with its services mounted as ``vre up`` mounts them, served over real HTTP, on
the session's real Rucio server and the session's PostgreSQL (every service's database). At
the same moment: 50 uploads into one project scope (half of them attached to one dataset
that none of them finds existing), 20 run submissions and 20 project creations. Each answer
is a success or a 4xx problem; afterwards Rucio and the storage agree — every uploaded file
is listed with its checksums and its bytes are at its replica's PFN, no file on the storage
element is without a listing, no temporary file is left, every project has its Rucio scope,
every run can be read back. No timings are asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from tests.support.embedded import embedded_settings
from tests.support.specs import serial_spec
from vre_common.postgres import PostgresServer
from vre_common.testing import ServerThread, TestIssuer
from vre_gateway import embedded
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway
from vre_rucio_local import LocalRucio

UPLOADS = 50
RUNS = 20
PROJECTS = 20
RSE = "VRE-DISK-1"


@pytest.fixture(scope="module")
def vre(
    rucio_server: LocalRucio,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, TestIssuer]]:
    """The embedded gateway and its services on the session's Rucio and PostgreSQL."""
    issuer = TestIssuer()
    validator = issuer.validator()
    folder: Path = tmp_path_factory.mktemp("vre-concurrency")
    gateway_db = postgres_server.create_database(f"gateway_conc_{uuid.uuid4().hex[:8]}")
    settings = embedded_settings(folder, issuer, database={"url": postgres_server.url(gateway_db)})
    factory = Factory(settings, validator=validator)  # first: the services get its link
    for name in ("workflows", "catalogue", "zenodo", "ivoa"):
        postgres_server.create_database(name)
    backends = embedded.Backends(rucio=rucio_server, postgres=postgres_server)
    apps = embedded.build_service_apps(settings, factory.link, backends)
    gateway = create_gateway(settings, factory=factory, service_apps=apps)
    with ServerThread(gateway, port=settings.port) as server:
        yield server.url, issuer


def _problem_or_success(response: httpx.Response, what: str) -> bool:
    """True for a success; a 4xx must be a problem document; anything else fails the test."""
    if response.status_code < 300:
        return True
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    assert response.json().get("detail"), what
    return False


def _spec(index: int) -> dict[str, Any]:
    return {
        **serial_spec(f"echo {index} > out.txt", name="write"),
        "outputs": {"files": ["out.txt"]},
    }


async def _rucio_state(rucio: LocalRucio, scope: str) -> tuple[dict[str, Any], set[str]]:
    """What Rucio lists in ``scope``: each file with its DID and replica PFNs; the scopes."""
    token = await asyncio.to_thread(rucio.admin_token)
    async with httpx.AsyncClient(
        base_url=rucio.url, headers={"X-Rucio-Auth-Token": token}, timeout=60
    ) as http:
        search = await http.get(
            f"/dids/{scope}/dids/search",
            params={"type": "file", "long": "True", "filters": repr([{"name": "*"}])},
        )
        search.raise_for_status()
        dids = [json.loads(line) for line in search.text.splitlines() if line.strip()]
        files: dict[str, Any] = {d["name"]: d for d in dids}
        if dids:
            listed = await http.post(
                "/replicas/list",
                json={"dids": [{"scope": scope, "name": n} for n in files], "all_states": True},
            )
            listed.raise_for_status()
            for line in listed.text.splitlines():
                if line.strip():
                    item = json.loads(line)
                    files[item["name"]]["pfns"] = item.get("rses", {}).get(RSE, [])
        scopes = await http.get("/scopes/")
        scopes.raise_for_status()
        return files, set(scopes.json())


@pytest.mark.slow  # about a minute on this 2-core machine
async def test_many_researchers_at_once(
    vre: tuple[str, TestIssuer], rucio_server: LocalRucio
) -> None:
    url, issuer = vre
    alice = issuer.headers("alice")
    slug = f"busy-{uuid.uuid4().hex[:8]}"
    scope = f"proj.{slug}"
    dataset = f"{scope}:shared"
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        created = await http.post(
            "/projects", json={"name": "Busy project", "slug": slug}, headers=alice
        )
        assert created.status_code == 201, created.text
        bodies = {f"data/file-{i:02d}.bin": os.urandom(1000 + 37 * i) for i in range(UPLOADS)}

        async def upload(index: int, name: str) -> httpx.Response:
            params = {"dataset": dataset} if index % 2 == 0 else {}
            return await http.put(
                f"/datalake/files/{scope}/{name}", content=bodies[name], params=params,
                headers=alice,
            )  # fmt: skip

        async def submit(index: int) -> httpx.Response:
            user = ("alice", "bob", "carol")[index % 3]
            return await http.post(
                "/workflows/runs", json={"spec": _spec(index), "name": f"busy-{index}"},
                headers=issuer.headers(user),
            )  # fmt: skip

        async def create_project(index: int) -> httpx.Response:
            user = ("alice", "bob", "carol", "dave")[index % 4]
            return await http.post(
                "/projects", json={"name": f"Project {index}", "slug": f"{slug}-p{index}"},
                headers=issuer.headers(user),
            )  # fmt: skip

        answers = await asyncio.gather(
            *(upload(i, name) for i, name in enumerate(bodies)),
            *(submit(i) for i in range(RUNS)),
            *(create_project(i) for i in range(PROJECTS)),
        )
        uploads = dict(zip(bodies, answers[:UPLOADS], strict=True))
        runs = answers[UPLOADS : UPLOADS + RUNS]
        projects = answers[UPLOADS + RUNS :]

        stored = {n for n, r in uploads.items() if _problem_or_success(r, f"upload {n}")}
        accepted = [r.json()["id"] for r in runs if _problem_or_success(r, "run submission")]
        made = [r.json()["slug"] for r in projects if _problem_or_success(r, "project creation")]
        # nothing here is a conflict of the callers' own making: all of them succeed
        assert len(stored) == UPLOADS, {n: r.text for n, r in uploads.items() if n not in stored}
        assert len(accepted) == RUNS
        assert len(made) == PROJECTS
        for name in stored:
            body = uploads[name].json()
            assert body["md5"] == hashlib.md5(bodies[name], usedforsecurity=False).hexdigest()

        # --- nothing lost: the runs read back, the dataset holds its half, the scopes exist
        for run_id in accepted:
            run = await http.get(f"/workflows/runs/{run_id}", headers=alice)
            if run.status_code == 404:  # bob's and carol's runs are theirs
                continue
            assert run.status_code == 200, run.text
        seen = 0
        for user in ("alice", "bob", "carol"):
            listing = await http.get(
                "/workflows/runs", params={"size": 200}, headers=issuer.headers(user)
            )
            assert listing.status_code == 200, listing.text
            seen += len({r["id"] for r in listing.json()["items"]} & set(accepted))
        assert seen == RUNS
        content = await http.get(f"/datalake/dids/{scope}/shared/content", headers=alice)
        assert content.status_code == 200, content.text
        attached = {d["name"] for d in content.json()}
        assert attached == {n for i, n in enumerate(bodies) if i % 2 == 0}

    # --- Rucio and the storage agree: each file listed once, with bytes; no bytes unlisted
    files, scopes = await _rucio_state(rucio_server, scope)
    assert set(files) == set(bodies)
    root = rucio_server.rse_prefixes[RSE]
    listed_paths = set()
    for name, did in files.items():
        assert did["bytes"] == len(bodies[name])
        assert len(did["pfns"]) == 1, did
        path = Path(unquote(urlsplit(did["pfns"][0]).path))
        assert await asyncio.to_thread(path.read_bytes) == bodies[name]
        listed_paths.add(path)
    scope_folder = root / scope  # Rucio's hash layout keeps a project scope's files together
    on_storage = {p for p in scope_folder.rglob("*") if p.is_file()}
    assert on_storage == listed_paths, on_storage ^ listed_paths  # no stray or .vre-part file
    for project in made:
        assert f"proj.{project}" in scopes
