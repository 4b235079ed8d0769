"""The seed's example end to end: dataset → workflow run → result → DOI, with provenance.

One gateway on a real port serves all four services mounted as the embedded mode mounts them
(``vre_gateway.embedded``: the services reach each other over HTTP through the gateway's URL),
on a real Rucio (the session's ``rucio_server``) and the Zenodo stand-in. alice creates a
private project and binds ``/vre/beta`` as member, so bob joins through the binding; bob
uploads two input files into the project scope; alice runs a two-step serial workflow on them
by DID, its outputs land in the project scope; she publishes them to Zenodo and
``/provenance`` walks back from the DOI through the run to bob's two files. carol, outside the
private project, gets 404 at every step.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.zenodo.tests.support.standin import ZenodoStandIn, served_standin
from tests.support.embedded import embedded_settings
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.main import create_app as create_catalogue
from vre_common.testing import ServerThread, TestIssuer
from vre_datalake.main import create_app as create_datalake
from vre_gateway import embedded
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway
from vre_rucio_local import LocalRucio
from vre_workflows.main import create_app as create_workflows
from vre_zenodo.config import ZenodoApiSettings
from vre_zenodo.main import create_app as create_zenodo

ZENODO_TOKENS = {"zenodo-alice-0123456789": "alice", "zenodo-carol-0123456789": "carol"}
META = {
    "upload_type": "dataset",
    "title": "Dark-matter reinterpretation: merged counts",
    "description": "Outputs of the end-to-end chain test.",
    "creators": [{"name": "Doe, Alice", "affiliation": "VRE"}],
    "license": "cc-by-4.0",
}


@pytest.fixture(scope="module")
def zenodo_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenodoStandIn]:
    """The Zenodo stand-in on a real server (alice and carol have personal tokens)."""
    with served_standin(tmp_path_factory.mktemp("zenodo-standin"), ZENODO_TOKENS) as standin:
        yield standin


@pytest.fixture(scope="module")
def gateway_url(
    rucio_server: LocalRucio,
    zenodo_standin: ZenodoStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, TestIssuer]]:
    """The gateway with the four services mounted, served over real HTTP."""
    issuer = TestIssuer()
    validator = issuer.validator()
    folder: Path = tmp_path_factory.mktemp("vre-chain")
    settings = embedded_settings(folder, issuer)
    factory = Factory(settings, validator=validator)  # first: the services get its link
    # Each service configured as embedded.build_service_apps does, except that Zenodo is the
    # stand-in (embedded reads Zenodo's URL from the environment) and the relays run often.
    backends = embedded.Backends(rucio=rucio_server)
    datalake = embedded._datalake_settings(settings, backends)
    workflows = embedded._workflows_settings(settings)
    zenodo = embedded._zenodo_settings(settings)
    apps = {
        "datalake": create_datalake(
            datalake.model_copy(
                update={
                    "provenance": datalake.provenance.model_copy(
                        update={"relay_interval_seconds": 0.3}
                    )
                }
            ),
            link=factory.link,
        ),
        "workflows": create_workflows(
            workflows.model_copy(
                update={
                    "provenance": workflows.provenance.model_copy(
                        update={"relay_interval_seconds": 0.3}
                    )
                }
            ),
            link=factory.link,
        ),
        "catalogue": create_catalogue(
            CatalogueSettings(database=embedded._sqlite(settings, "catalogue")),
            link=factory.link,
        ),
        "zenodo": create_zenodo(
            zenodo.model_copy(
                update={
                    "zenodo": ZenodoApiSettings(url=zenodo_standin.base_url),
                    "provenance": zenodo.provenance.model_copy(
                        update={"relay_interval_seconds": 0.3}
                    ),
                }
            ),
            link=factory.link,
        ),
    }
    gateway = create_gateway(settings, factory=factory, service_apps=apps)
    with ServerThread(gateway, port=settings.port) as server:
        assert server.url == settings.base_url
        yield server.url, issuer


async def _poll(
    http: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    done: Any,
    *,
    within: float = 120,
    params: dict[str, Any] | None = None,
    not_yet: int | None = None,
) -> dict[str, Any]:
    """GET ``path`` until ``done(body)`` (a ``not_yet`` status: try again); fail with the
    last answer after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = await http.get(path, headers=headers, params=params)
        if answer.status_code != not_yet:
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            if done(body):
                return body
        assert time.monotonic() < deadline, f"gave up waiting on {path}: {answer.text}"
        await asyncio.sleep(0.3)


async def test_dataset_run_result_doi_chain(gateway_url: tuple[str, TestIssuer]) -> None:
    url, issuer = gateway_url
    alice, bob, carol = (issuer.headers(u) for u in ("alice", "bob", "carol"))
    slug = f"dm-{uuid.uuid4().hex[:8]}"
    scope = f"proj.{slug}"
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        # --- alice creates a private project and binds /vre/beta (bob's group) as member
        created = await http.post(
            "/projects",
            json={"name": "DM reinterpretation", "slug": slug, "visibility": "private"},
            headers=alice,
        )
        assert created.status_code == 201, created.text
        assert created.json()["scope"] == scope
        bound = await http.post(
            f"/projects/{slug}/groups", json={"group": "/vre/beta", "role": "member"}, headers=alice
        )
        assert bound.status_code in (200, 201), bound.text
        assert (await http.get(f"/projects/{slug}", headers=bob)).status_code == 200
        assert (await http.get(f"/projects/{slug}", headers=carol)).status_code == 404

        # --- bob uploads the two inputs into the project scope (carol cannot)
        inputs = {"inputs/a.txt": b"1\n2\n3\n", "inputs/b.txt": b"4\n5\n"}
        for name, data in inputs.items():
            up = await http.put(f"/datalake/files/{scope}/{name}", content=data, headers=bob)
            assert up.status_code in (200, 201), up.text
        refused = await http.put(f"/datalake/files/{scope}/x.txt", content=b"x", headers=carol)
        assert refused.status_code == 404, refused.text
        listed = await http.get(f"/datalake/dids/{scope}/inputs/a.txt", headers=carol)
        assert listed.status_code == 404, listed.text

        # --- alice runs a two-step serial workflow on them by DID; outputs → project scope
        spec = {
            "version": "0.9.4",
            "inputs": {"parameters": {}},
            "workflow": {
                "type": "serial",
                "specification": {
                    "steps": [
                        {
                            "name": "merge",
                            "environment": "docker.io/library/debian:bookworm-slim",
                            "commands": ["cat a.txt b.txt > merged.txt"],
                        },
                        {
                            "name": "count",
                            "environment": "docker.io/library/debian:bookworm-slim",
                            "commands": ["mkdir -p results && wc -l < merged.txt > results/n.txt"],
                        },
                    ]
                },
            },
            "outputs": {"files": ["merged.txt", "results/n.txt"]},
        }
        submission = {
            "spec": spec,
            "inputs": [{"did": f"{scope}:{name}"} for name in inputs],
            "project": slug,
            "name": "chain",
        }
        outsider = await http.post("/workflows/runs", json=submission, headers=carol)
        assert outsider.status_code == 404, outsider.text
        submitted = await http.post("/workflows/runs", json=submission, headers=alice)
        assert submitted.status_code == 201, submitted.text
        run_id = submitted.json()["id"]
        assert submitted.json()["project"] == slug
        assert submitted.json()["destination"]["scope"] == scope
        for path in (f"/workflows/runs/{run_id}", f"/workflows/runs/{run_id}/outputs"):
            assert (await http.get(path, headers=carol)).status_code == 404
        cancel = await http.post(f"/workflows/runs/{run_id}/cancel", headers=carol)
        assert cancel.status_code == 404, cancel.text
        run = await _poll(
            http,
            f"/workflows/runs/{run_id}",
            alice,
            lambda b: b["status"] not in ("queued", "running"),
        )
        assert run["status"] == "finished", run.get("error")
        outputs = {o["path"]: o["did"] for o in run["outputs"]}
        assert set(outputs) == {"merged.txt", "results/n.txt"}
        assert all(d.startswith(f"{scope}:") for d in outputs.values())
        seen_by_bob = await http.get(f"/workflows/runs/{run_id}", headers=bob)
        assert seen_by_bob.status_code == 200, seen_by_bob.text  # runs.read: members
        logs = await http.get(f"/workflows/runs/{run_id}/logs", headers=carol)
        assert logs.status_code == 404, logs.text

        # --- alice publishes the run's outputs to Zenodo and gets a DOI
        for user, headers in (("alice", alice), ("carol", carol)):
            token = next(t for t, u in ZENODO_TOKENS.items() if u == user)
            registered = await http.put(
                "/zenodo/credentials", json={"token": token}, headers=headers
            )
            assert registered.status_code == 200, registered.text
        deposit = {"run_id": run_id, "metadata": META}
        refused = await http.post("/zenodo/depositions", json=deposit, headers=carol)
        assert refused.status_code == 404, refused.text
        refused = await http.post(
            "/zenodo/depositions", json={"dids": list(outputs.values()), "metadata": META},
            headers=carol,
        )  # fmt: skip
        assert refused.status_code == 404, refused.text
        created = await http.post("/zenodo/depositions", json=deposit, headers=alice)
        assert created.status_code in (200, 201, 202), created.text
        deposition = created.json()["id"]
        await _poll(
            http,
            f"/zenodo/depositions/{deposition}",
            alice,
            lambda b: b["state"] in ("ready", "incomplete"),
        )
        published = await http.post(f"/zenodo/depositions/{deposition}/publish", headers=alice)
        assert published.status_code == 200, published.text
        doi = published.json()["doi"]
        assert doi

        # --- /provenance from the DOI walks back through the run to bob's two files
        entity = f"doi:{doi.lower()}"
        wanted = {f"did:{scope}:{name}" for name in inputs}
        params = {"entity": entity, "direction": "up", "depth": 5}
        graph = await _poll(
            http,
            "/provenance",
            alice,
            lambda g: wanted <= {n["id"] for n in g["nodes"]},
            within=30,
            params=params,
            not_yet=404,  # until the relays have delivered the events
        )
        nodes = {n["id"]: n for n in graph["nodes"]}
        assert nodes[f"run:{run_id}"]["category"] == "activity"
        edges = {(e["source"], e["target"], e["relation"]) for e in graph["edges"]}
        for did in outputs.values():
            assert (f"did:{did}", f"run:{run_id}", "wasGeneratedBy") in edges
        for did in wanted:
            assert (f"run:{run_id}", did, "used") in edges
        outsider = await http.get("/provenance", params=params, headers=carol)
        assert outsider.status_code == 404, outsider.text
