"""Provenance outside Science Projects (issue 21): a personal upload, run and publication are
recorded and readable by their owner; others see the public DOI alone."""

from __future__ import annotations

from typing import Any

import httpx

from services.gateway.tests.gateway_support import Users
from services.gateway.tests.test_gateway_provenance import post, walk
from vre_common.provenance import Event, EventKind, did_id, doi_id, run_id

DOI = doi_id("10.5281/zenodo.77")
DATA = did_id("user.alice", "events.csv")
OUT = did_id("user.alice", "sum-1234/total.txt")
RUN = run_id("personal-1")


def personal_chain(as_user: Users) -> list[Event]:
    """alice uploads into her own scope, runs on it and publishes, in no project."""
    alice = f"{as_user.issuer.issuer}|{as_user.subject('alice')}"

    def ev(kind: EventKind, service: str, **kw: Any) -> Event:
        return Event.create(kind, alice, service=service, project=None, **kw).model_copy(
            update={"actor_name": "alice"}
        )

    return [
        ev(EventKind.UPLOAD, "datalake", generated=[DATA]),
        ev(EventKind.RUN_STARTED, "workflows", activity=RUN, used=[DATA]),
        ev(EventKind.RUN_FINISHED, "workflows", activity=RUN, generated=[OUT]),
        ev(EventKind.PUBLISH, "zenodo", used=[OUT], generated=[DOI]),
    ]


async def test_personal_chain_is_its_owners(client: httpx.AsyncClient, as_user: Users) -> None:
    answer = await post(client, as_user, personal_chain(as_user))
    assert answer.status_code == 200, answer.text

    up = await walk(client, as_user("alice"), DOI, "up", 5)
    ids = {n["id"] for n in up["nodes"]}
    assert {DOI, OUT, RUN, DATA} <= ids
    assert sum(1 for n in up["nodes"] if n["type"] == "upload") == 1
    by_id = {n["id"]: n for n in up["nodes"]}
    assert by_id[RUN]["actor"] == "alice"
    assert by_id[DATA]["project"] is None
    relations = {(e["source"], e["target"], e["relation"]) for e in up["edges"]}
    assert (RUN, DATA, "used") in relations
    assert (OUT, RUN, "wasGeneratedBy") in relations

    down = await walk(client, as_user("alice"), DATA, "down", 5)
    assert DOI in {n["id"] for n in down["nodes"]}
    run = await walk(client, as_user("alice"), RUN, "up", 1)
    assert DATA in {n["id"] for n in run["nodes"]}

    # bob sees the public DOI, and nothing of alice's personal work behind it
    seen_by_bob = await walk(client, as_user("bob"), DOI, "up", 5)
    assert {n["id"] for n in seen_by_bob["nodes"]} == {DOI}
    for entity in (RUN, DATA, OUT):
        hidden = await client.get(
            "/provenance", params={"entity": entity, "direction": "up"}, headers=as_user("bob")
        )
        assert hidden.status_code == 404, entity
        assert hidden.headers["content-type"].startswith("application/problem+json")

    prov = await client.get(
        "/provenance",
        params={"entity": DOI, "direction": "up", "depth": 5, "format": "prov-json"},
        headers=as_user("alice"),
    )
    assert prov.status_code == 200, prov.text
    assert "vre:user/alice" in prov.text
