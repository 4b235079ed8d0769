"""Provenance outside Science Projects (issue 21): a personal upload, run and publication are
recorded and readable by their owner; once a DOI is published from them, the chain up to it is
readable by anybody signed in (Zenodo publishes it); what is not published stays its owner's
(404 to others, as for a node that does not exist)."""

from __future__ import annotations

from typing import Any

import httpx

from services.gateway.tests.gateway_support import Users, create_project
from services.gateway.tests.test_gateway_provenance import post, walk
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id, run_id

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

    # bob sees the public DOI and the chain up to it: Zenodo published it
    seen_by_bob = await walk(client, as_user("bob"), DOI, "up", 5)
    assert {n["id"] for n in seen_by_bob["nodes"]} == {n["id"] for n in up["nodes"]}
    assert {(e["source"], e["target"], e["relation"]) for e in seen_by_bob["edges"]} == relations
    for entity in (RUN, DATA, OUT):
        readable = await walk(client, as_user("bob"), entity, "up", 1)
        assert readable["root"] == entity

    prov = await client.get(
        "/provenance",
        params={"entity": DOI, "direction": "up", "depth": 5, "format": "prov-json"},
        headers=as_user("alice"),
    )
    assert prov.status_code == 200, prov.text
    assert "vre:user/alice" in prov.text


async def test_a_doi_used_in_a_project_stays_public(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    """carol reproduces alice's personal DOI in her project: the DOI stays readable to all."""
    await post(client, as_user, personal_chain(as_user))
    slug = "repro-doi"
    made = await create_project(client, as_user("carol"), slug)
    assert made["slug"] == slug
    carol = f"{as_user.issuer.issuer}|{as_user.subject('carol')}"
    rerun = did_id(made["scope"], "reproduce/total.txt")
    event = Event.create(
        EventKind.REPRODUCTION, carol, service="zenodo", project=slug,
        activity="reproduction:r1", used=[DOI], generated=[rerun],
    ).model_copy(update={"actor_name": "carol"})  # fmt: skip
    assert (await post(client, as_user, [event])).status_code == 200
    down = await walk(client, as_user("carol"), DOI, "down", 1)
    ids = {n["id"] for n in down["nodes"]}
    assert {"reproduction:r1", rerun} <= ids
    assert {n["id"]: n for n in down["nodes"]}[DOI]["project"] is None
    for user in ("alice", "bob"):  # the DOI is still public; carol's project is not
        seen = await walk(client, as_user(user), DOI, "down", 1)
        assert "reproduction:r1" not in {n["id"] for n in seen["nodes"]}


PRIVATE = did_id("user.alice", "notes/draft.csv")
PRIVATE_OUT = did_id("user.alice", "scratch-9/draft-total.txt")
PRIVATE_RUN = run_id("personal-unpublished")


async def test_unpublished_personal_work_stays_its_owners(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    """Beside a published chain, alice's unpublished upload and run on it are hers alone: bob
    and carol get 404 (not 403: whether it exists is not said); walking down from her
    published input, bob sees the publication but not the unpublished run."""
    alice = f"{as_user.issuer.issuer}|{as_user.subject('alice')}"

    def ev(kind: EventKind, service: str, **kw: Any) -> Event:
        return Event.create(kind, alice, service=service, project=None, **kw).model_copy(
            update={"actor_name": "alice"}
        )

    chain = personal_chain(as_user)
    private = [
        ev(EventKind.UPLOAD, "datalake", generated=[PRIVATE]),
        ev(EventKind.RUN_STARTED, "workflows", activity=PRIVATE_RUN, used=[PRIVATE, DATA]),
        ev(EventKind.RUN_FINISHED, "workflows", activity=PRIVATE_RUN, generated=[PRIVATE_OUT]),
    ]
    assert (await post(client, as_user, [*chain, *private])).status_code == 200

    mine = await walk(client, as_user("alice"), PRIVATE_OUT, "up", 5)
    assert {PRIVATE_OUT, PRIVATE_RUN, PRIVATE, DATA} <= {n["id"] for n in mine["nodes"]}
    for user in ("bob", "carol"):
        for entity in (PRIVATE, PRIVATE_RUN, PRIVATE_OUT):
            hidden = await client.get(
                "/provenance", params={"entity": entity, "direction": "up"},
                headers=as_user(user),
            )  # fmt: skip
            assert hidden.status_code == 404, (user, entity)
            assert hidden.headers["content-type"].startswith("application/problem+json")
    # the published input is readable; what else was made from it privately is not shown
    down = await walk(client, as_user("bob"), DATA, "down", 5)
    ids = {n["id"] for n in down["nodes"]}
    assert {DATA, RUN, OUT, DOI} <= ids
    assert not ids & {PRIVATE, PRIVATE_RUN, PRIVATE_OUT}
    prov = await client.get(
        "/provenance",
        params={"entity": DOI, "direction": "up", "depth": 5, "format": "prov-json"},
        headers=as_user("bob"),
    )
    assert prov.status_code == 200, prov.text
    assert "personal-unpublished" not in prov.text
    assert RUN in prov.text
