"""The provenance graph: idempotent ingest, walks up and down, PROV-JSON, who sees what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from services.gateway.tests.gateway_support import Users, create_project
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id, run_id

DOI = doi_id("10.5281/zenodo.42")
A = did_id("proj.atlas", "in/a.root")
B = did_id("proj.atlas", "in/b.root")
INPUTS = did_id("proj.atlas", "inputs")
HIST = did_id("proj.atlas", "out/hist.root")
PLOT = did_id("proj.atlas", "out/plot.png")
RUN = run_id("r1")


def chain(as_user: Users) -> list[Event]:
    """bob uploads and groups the inputs, alice runs on them and publishes the outputs."""
    bob = f"{as_user.issuer.issuer}|{as_user.subject('bob')}"
    alice = f"{as_user.issuer.issuer}|{as_user.subject('alice')}"

    def ev(kind: EventKind, actor: str, service: str, **kw: Any) -> Event:
        name = "bob" if actor == bob else "alice"
        return Event.create(kind, actor, service=service, project="atlas", **kw).model_copy(
            update={"actor_name": name}
        )

    return [
        ev(EventKind.UPLOAD, bob, "datalake", generated=[A, B]),
        ev(EventKind.ATTACH, bob, "datalake", used=[A, B], generated=[INPUTS]),
        ev(
            EventKind.RUN_STARTED,
            alice,
            "workflows",
            activity=RUN,
            used=[INPUTS],
            attributes={"workflow": "serial", "status": "running"},
            labels={RUN: "reinterpretation"},
        ),
        ev(
            EventKind.RUN_FINISHED,
            alice,
            "workflows",
            activity=RUN,
            generated=[HIST, PLOT],
            attributes={"status": "finished"},
        ),
        ev(
            EventKind.PUBLISH,
            alice,
            "zenodo",
            used=[HIST, PLOT],
            generated=[DOI],
            labels={DOI: "Dark matter limits"},
        ),
    ]


async def post(client: httpx.AsyncClient, as_user: Users, events: list[Event]) -> httpx.Response:
    body = {"events": [e.model_dump(mode="json") for e in events]}
    return await client.post("/provenance/events", json=body, headers=as_user("admin"))


async def walk(
    client: httpx.AsyncClient, headers: dict[str, str], entity: str, direction: str, depth: int
) -> dict[str, Any]:
    r = await client.get(
        "/provenance",
        params={"entity": entity, "direction": direction, "depth": depth},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def depths(graph: dict[str, Any]) -> dict[str, int]:
    return {n["id"]: n["depth"] for n in graph["nodes"]}


@pytest.fixture
async def atlas(client: httpx.AsyncClient, as_user: Users) -> None:
    await create_project(client, as_user("alice"), "atlas")
    await client.post(
        "/projects/atlas/groups",
        json={"group": "/vre/beta", "role": "member"},
        headers=as_user("alice"),
    )
    r = await post(client, as_user, chain(as_user))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 0}


@pytest.mark.usefixtures("atlas")
async def test_from_the_doi_back_to_the_uploaded_files(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    graph = await walk(client, as_user("alice"), DOI, "up", 10)
    found = depths(graph)
    upload = next(n["id"] for n in graph["nodes"] if n["type"] == "upload")
    attach = next(n["id"] for n in graph["nodes"] if n["type"] == "attach")
    publish = next(n["id"] for n in graph["nodes"] if n["type"] == "publish")
    assert found == {
        DOI: 0,
        publish: 1,
        HIST: 1,
        PLOT: 1,
        RUN: 2,
        INPUTS: 2,
        attach: 3,
        A: 3,
        B: 3,
        upload: 4,
    }
    assert graph["truncated"] is False
    edges = {(e["source"], e["relation"], e["target"]) for e in graph["edges"]}
    assert (DOI, "wasGeneratedBy", publish) in edges
    assert (RUN, "used", INPUTS) in edges
    assert (HIST, "wasGeneratedBy", RUN) in edges
    assert (A, "wasGeneratedBy", upload) in edges
    run = next(n for n in graph["nodes"] if n["id"] == RUN)
    assert run["started_at"]
    assert run["ended_at"]
    assert run["attributes"] == {"workflow": "serial", "status": "finished"}
    assert run["actor"] == "alice"
    assert run["project"] == "atlas"
    assert run["label"] == "reinterpretation"
    # depth limits the walk
    assert set(depths(await walk(client, as_user("alice"), DOI, "up", 2))) == {
        DOI,
        publish,
        HIST,
        PLOT,
        RUN,
        INPUTS,
    }
    assert set(depths(await walk(client, as_user("alice"), DOI, "up", 1))) == {
        DOI,
        publish,
        HIST,
        PLOT,
    }


@pytest.mark.usefixtures("atlas")
async def test_from_an_input_down_to_the_doi(client: httpx.AsyncClient, as_user: Users) -> None:
    graph = await walk(client, as_user("bob"), A, "down", 10)  # bob: member through /vre/beta
    found = depths(graph)
    assert found[A] == 0
    assert found[INPUTS] == 1
    assert found[RUN] == 2
    assert found[HIST] == 2
    assert found[DOI] == 3
    assert B not in found  # siblings are not descendants
    from_run = await walk(client, as_user("bob"), RUN, "up", 1)
    assert set(depths(from_run)) == {RUN, INPUTS}
    outputs = await walk(client, as_user("bob"), RUN, "down", 1)
    assert set(depths(outputs)) == {RUN, HIST, PLOT}


@pytest.mark.usefixtures("atlas")
async def test_redelivery_changes_nothing(client: httpx.AsyncClient, as_user: Users) -> None:
    events = chain(as_user)
    first = await post(client, as_user, events)
    assert first.json() == {"accepted": 5, "duplicates": 0}
    again = await post(client, as_user, events)
    assert again.json() == {"accepted": 0, "duplicates": 5}
    audit = (await client.get("/projects/atlas/audit", headers=as_user("alice"))).json()["items"]
    reported = [a for a in audit if a["source"] != "gateway"]
    assert len(reported) == 10  # the fixture's 5 and these 5, once each
    assert {a["action"] for a in reported} == {
        "datalake.upload",
        "datalake.attach",
        "workflows.run.started",
        "workflows.run.finished",
        "zenodo.publish",
    }


async def test_a_run_told_in_two_deliveries_is_one_node_with_what_each_added(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    """A node reported again in a later batch is merged, not replaced: the first start, the
    last end, the newest label, the attributes of both (the later winning)."""
    await create_project(client, as_user("alice"), "atlas")
    events = chain(as_user)
    started, finished = events[2], events[3]
    assert (await post(client, as_user, events[:3])).json() == {"accepted": 3, "duplicates": 0}
    late = finished.model_copy(update={"labels": {RUN: "reinterpretation, final"}})
    # one delivery may carry an event twice (an outbox retried it): it counts once
    assert (await post(client, as_user, [late, late, *events[4:]])).json() == {
        "accepted": 2,
        "duplicates": 1,
    }
    graph = await walk(client, as_user("alice"), RUN, "down", 1)
    run = next(n for n in graph["nodes"] if n["id"] == RUN)
    assert datetime.fromisoformat(run["started_at"]) == started.time
    assert datetime.fromisoformat(run["ended_at"]) == finished.time
    assert run["label"] == "reinterpretation, final"
    assert run["attributes"] == {"workflow": "serial", "status": "finished"}
    assert {n["id"] for n in graph["nodes"]} == {RUN, HIST, PLOT}
    audit = (await client.get("/projects/atlas/audit", headers=as_user("alice"))).json()["items"]
    reported = [a["action"] for a in audit if a["source"] != "gateway"]
    assert reported == [  # newest first, in the order the events came
        "zenodo.publish",
        "workflows.run.finished",
        "workflows.run.started",
        "datalake.attach",
        "datalake.upload",
    ]


@pytest.mark.usefixtures("atlas")
async def test_only_readable_projects_are_shown(client: httpx.AsyncClient, as_user: Users) -> None:
    carol = as_user("carol")
    assert (
        await client.get("/provenance", params={"entity": DOI}, headers=carol)
    ).status_code == 404
    # carol's private project claims to have used an atlas file
    await create_project(client, carol, "other")
    carol_key = f"{as_user.issuer.issuer}|{as_user.subject('carol')}"
    mine = Event.create(
        EventKind.RUN_STARTED,
        carol_key,
        service="workflows",
        project="other",
        activity=run_id("c1"),
        used=[A],
    )
    assert (await post(client, as_user, [mine])).status_code == 200
    down = await walk(client, as_user("alice"), A, "down", 10)
    assert run_id("c1") not in depths(down)  # alice does not see carol's private run
    up = await walk(client, carol, run_id("c1"), "up", 10)
    assert set(depths(up)) == {run_id("c1")}  # carol does not see atlas's file
    # atlas turns public: every signed-in user may read its provenance, not anonymous ones
    await client.patch("/projects/atlas", json={"visibility": "public"}, headers=as_user("alice"))
    assert A in depths(await walk(client, carol, run_id("c1"), "up", 10))
    anonymous = await client.get("/provenance", params={"entity": DOI})
    assert anonymous.status_code == 401


@pytest.mark.usefixtures("atlas")
async def test_prov_json_export(client: httpx.AsyncClient, as_user: Users) -> None:
    r = await client.get(
        "/provenance",
        params={"entity": DOI, "direction": "up", "depth": 10, "format": "prov-json"},
        headers=as_user("alice"),
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {
        "prefix",
        "entity",
        "activity",
        "agent",
        "used",
        "wasGeneratedBy",
        "wasAssociatedWith",
    }
    assert doc["prefix"]["doi"] == "https://doi.org/"
    assert {"did", "run", "upload", "attach", "publish", "vre"} <= set(doc["prefix"])
    assert set(doc["entity"]) == {DOI, HIST, PLOT, INPUTS, A, B}
    assert RUN in doc["activity"]
    assert doc["entity"][DOI]["prov:label"] == "Dark matter limits"
    assert doc["entity"][A]["prov:type"] == {"$": "vre:did", "type": "prov:QUALIFIED_NAME"}
    assert doc["activity"][RUN]["prov:startTime"].endswith("Z")
    assert doc["agent"]["vre:user/alice"]["prov:label"] == "alice"
    # every relation points at declared records, with the PROV-JSON keys of its kind
    declared = set(doc["entity"]) | set(doc["activity"])
    for rel in doc["used"].values():
        assert set(rel) == {"prov:activity", "prov:entity"}
        assert rel["prov:activity"] in doc["activity"]
        assert rel["prov:entity"] in doc["entity"]
    for rel in doc["wasGeneratedBy"].values():
        assert set(rel) == {"prov:entity", "prov:activity"}
        assert {rel["prov:entity"], rel["prov:activity"]} <= declared
    for rel in doc["wasAssociatedWith"].values():
        assert rel["prov:agent"] in doc["agent"]
    # every qualified name uses a declared prefix
    for name in declared:
        assert name.split(":", 1)[0] in doc["prefix"]


async def test_only_services_may_post_and_events_are_validated(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    event = Event.create(EventKind.UPLOAD, "x|y", service="datalake", generated=[A])
    body = {"events": [event.model_dump(mode="json")]}
    assert (
        await client.post("/provenance/events", json=body, headers=as_user("alice"))
    ).status_code == 403
    assert (await client.post("/provenance/events", json=body)).status_code == 401
    bad = {"events": [{**event.model_dump(mode="json"), "used": ["not an id"]}]}
    assert (
        await client.post("/provenance/events", json=bad, headers=as_user("admin"))
    ).status_code == 422
    run_without_id = {"events": [{**event.model_dump(mode="json"), "kind": "run.started"}]}
    r = await client.post("/provenance/events", json=run_without_id, headers=as_user("admin"))
    assert r.status_code == 422
    service_token = as_user("svc", client_id="vre-workflows")
    assert (
        await client.post("/provenance/events", json=body, headers=service_token)
    ).status_code == 403


async def test_unknown_and_malformed_entities(client: httpx.AsyncClient, as_user: Users) -> None:
    r = await client.get("/provenance", params={"entity": "did:nope:x"}, headers=as_user("alice"))
    assert r.status_code == 404
    r = await client.get("/provenance", params={"entity": "nonsense"}, headers=as_user("alice"))
    assert r.status_code == 422
    r = await client.get(
        "/provenance", params={"entity": A, "direction": "sideways"}, headers=as_user("alice")
    )
    assert r.status_code == 422


def test_prov_json_keeps_uri_ids_as_they_are() -> None:
    """A VO service's ivo:// id (or an https:// page) expands to itself, not to a made-up
    page of the gateway; the VRE's own kinds expand to the gateway's pages."""
    from vre_gateway.models.provenance import ProvEdge, ProvenanceGraph, ProvNode
    from vre_gateway.services.provenance import to_prov_json

    def node(id_: str, category: str, type_: str, depth: int) -> ProvNode:
        return ProvNode.model_validate(
            {"id": id_, "category": category, "type": type_, "project": None,
             "label": None, "depth": depth}
        )  # fmt: skip

    service, query, table = "ivo://dachs.test/tap", "query:42", "did:proj.x:cone.vot"
    graph = ProvenanceGraph(
        root=table,
        direction="up",
        depth=2,
        nodes=[
            node(table, "entity", "did", 0),
            node(query, "activity", "query", 1),
            node(service, "entity", "vo-service", 2),
        ],
        edges=[
            ProvEdge(source=table, target=query, relation="wasGeneratedBy"),
            ProvEdge(source=query, target=service, relation="used"),
        ],
        truncated=False,
    )
    doc = to_prov_json(graph, "https://vre.example.org/")
    prefixes = doc["prefix"]

    def expand(qname: str) -> str:
        prefix, local = qname.split(":", 1)
        return str(prefixes[prefix]) + local

    assert expand(service) == service
    assert expand(table) == "https://vre.example.org/provenance/id/did/proj.x:cone.vot"
    assert service in doc["entity"]
