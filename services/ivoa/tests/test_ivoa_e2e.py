"""The ivoa service end to end, through the gateway, on a real TAP server (GAVO DaCHS) and a
real Rucio: services and tables, sync/async ADQL, cone search, an upload cross-match, errors
(the service's own message), a service stopped mid-query, timeouts and cancel (nothing
written), results as Data Lake DIDs with metadata read back with astropy, and alice's cone
query used as a workflow input (its provenance: a ``query`` activity). SIA v2 and registry
discovery: test_ivoa_sia_registry.py.
"""

from __future__ import annotations

import asyncio
import io
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pyarrow
import pyarrow.parquet
import pytest
from astropy.table import Table

from services.ivoa.tests.conftest import SCS, TAP, Vre
from services.ivoa.tests.support.dachs import TABLE, angular_distance, catalogue

SLOW_ADQL = (
    f"SELECT COUNT(*) AS n FROM {TABLE} AS a, {TABLE} AS b, {TABLE} AS c "
    "WHERE a.mag + b.mag + c.mag < 1"
)
EDGE = 1e-6  # sources this close to a cone's edge are left out of exact comparisons


def expected_ids(ra: float, dec: float, radius: float) -> tuple[set[int], set[int]]:
    """(ids surely inside, ids within EDGE of the boundary) by the test's own distances."""
    inside, edge = set(), set()
    for source in catalogue():
        d = angular_distance(ra, dec, source.ra, source.dec)
        if abs(d - radius) < EDGE:
            edge.add(source.id)
        elif d < radius:
            inside.add(source.id)
    return inside, edge


def read_table(data: bytes, fmt: str) -> Table:
    """A result file read back with astropy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "parquet":  # astropy's Parquet reader needs pandas: read with pyarrow
            arrow = pyarrow.parquet.read_table(pyarrow.BufferReader(data))
            return Table({n: arrow[n].to_numpy() for n in arrow.column_names})
        return Table.read(io.BytesIO(data), format=fmt)


async def poll(
    http: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    done: Callable[[dict[str, Any]], bool],
    within: float = 60,
) -> dict[str, Any]:
    """GET ``path`` until ``done(body)``."""
    deadline = time.monotonic() + within
    while True:
        answer = await http.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"gave up waiting on {path}: {body}"
        await asyncio.sleep(0.2)


async def fetch_result(http: httpx.AsyncClient, did: str, headers: dict[str, str]) -> bytes:
    scope, name = did.split(":", 1)
    answer = await http.get(f"/datalake/files/{scope}/{name}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.content


async def absent(http: httpx.AsyncClient, did: str, headers: dict[str, str]) -> bool:
    scope, name = did.split(":", 1)
    answer = await http.get(f"/datalake/dids/{scope}/{name}", headers=headers)
    return answer.status_code == 404


# ---------------------------------------------------------------------- services


async def test_services_capabilities_and_tables(http: httpx.AsyncClient, vre: Vre) -> None:
    alice = vre.headers("alice")
    listed = await http.get("/ivoa/services", headers=alice)
    assert listed.status_code == 200, listed.text
    names = {s["name"]: s for s in listed.json()["items"]}
    assert names[TAP]["type"] == "tap"
    assert names[SCS]["type"] == "scs"
    assert (await http.get("/ivoa/services")).status_code == 401

    detail = await http.get(f"/ivoa/services/{TAP}", headers=alice)
    assert detail.status_code == 200, detail.text
    standards = {c["standard_id"] for c in detail.json()["capabilities"]}
    assert "ivo://ivoa.net/std/TAP" in standards
    tap = next(c for c in detail.json()["capabilities"] if c["standard_id"].endswith("/TAP"))
    assert any(lang.startswith("ADQL") for lang in tap["languages"])

    tables = await http.get(f"/ivoa/services/{TAP}/tables", params={"q": "vrecat"}, headers=alice)
    assert tables.status_code == 200, tables.text
    main = next(t for t in tables.json()["items"] if t["name"] == TABLE)
    columns = {c["name"]: c for c in main["columns"]}
    assert {"id", "ra", "dec", "mag"} <= set(columns)
    assert columns["ra"]["ucd"] == "pos.eq.ra;meta.main"
    assert columns["ra"]["unit"] == "deg"

    unknown = await http.get("/ivoa/services/nope", headers=alice)
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["detail"]
    assert TAP in unknown.json()["detail"]

    found = await http.get("/search", params={"q": "vrecat", "types": "vo-table"}, headers=alice)
    assert found.status_code == 200, found.text
    assert any(h["id"] == f"{TAP}:{TABLE}" for h in found.json()["items"]), found.json()


# ---------------------------------------------------------------------- queries


async def test_sync_adql_contains_circle_matches_own_distances(
    http: httpx.AsyncClient, vre: Vre, uid: str
) -> None:
    alice = vre.headers("alice")
    ra, dec, radius = 150.3, 2.1, 0.4
    adql = (
        f"SELECT id, ra, dec, mag FROM {TABLE} "
        f"WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius}))"
    )
    body = {
        "service": TAP,
        "adql": adql,
        "maxrec": 1000,
        "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/circle.vot"},
    }
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["phase"] == "COMPLETED"
    assert job["mode"] == "sync"
    assert answer.headers["location"] == f"/ivoa/queries/{job['id']}"
    inside, edge = expected_ids(ra, dec, radius)
    assert len(inside) > 10  # the cone is not trivially small
    result = job["result"]
    assert result["did"] == f"user.alice:ivoa/{uid}/circle.vot"
    assert result["columns"] == ["id", "ra", "dec", "mag"]
    assert job["started_at"]
    assert job["finished_at"]
    assert job["execution_seconds"] is not None

    table = read_table(await fetch_result(http, result["did"], alice), "votable")
    got = {int(i) for i in table["id"]}
    assert got - edge == inside
    assert result["rows"] == len(table) == len(got)

    did = await http.get(f"/datalake/dids/user.alice/ivoa/{uid}/circle.vot", headers=alice)
    assert did.status_code == 200, did.text
    meta = did.json()["metadata"]
    assert meta["ivoa_service"] == TAP
    assert meta["ivoa_query"] == adql
    assert meta["ivoa_rows"] == len(table)
    assert meta["ivoa_format"] == "votable"
    assert meta["ivoa_query_id"] == job["id"]
    assert meta["ivoa_query_time"]

    again = await http.get(f"/ivoa/queries/{job['id']}", headers=alice)
    assert again.json()["result"] == result
    assert (
        await http.get(f"/ivoa/queries/{job['id']}", headers=vre.headers("bob"))
    ).status_code == 404


async def test_async_adql_into_parquet(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    alice = vre.headers("alice")
    body = {
        "service": TAP,
        "adql": f"SELECT id, mag FROM {TABLE} WHERE mag < 13 ORDER BY id",
        "mode": "async",
        "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/bright.parquet",
                        "format": "parquet"},
    }  # fmt: skip
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 202, answer.text
    assert answer.json()["mode"] == "async"
    job = await poll(
        http, answer.headers["location"], alice, lambda b: b["phase"] not in ("QUEUED", "EXECUTING")
    )
    assert job["phase"] == "COMPLETED", job["error"]
    expected = sorted(s.id for s in catalogue() if s.mag < 13)
    table = read_table(await fetch_result(http, job["result"]["did"], alice), "parquet")
    assert [int(i) for i in table["id"]] == expected
    assert job["result"]["rows"] == len(expected)
    listed = await http.get("/ivoa/queries", headers=alice)
    assert job["id"] in {q["id"] for q in listed.json()["items"]}


async def test_cone_search_into_fits(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    alice = vre.headers("alice")
    ra, dec, radius = 148.0, -1.0, 0.3
    body = {
        "service": SCS,
        "cone": {"ra": ra, "dec": dec, "radius": radius},
        "mode": "sync",
        "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/cone.fits", "format": "fits"},
    }
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["service_type"] == "scs"
    assert job["parameters"]["radius"] == radius
    table = read_table(await fetch_result(http, job["result"]["did"], alice), "fits")
    inside, edge = expected_ids(ra, dec, radius)
    assert inside
    assert {int(i) for i in table["id"]} - edge == inside


async def test_upload_crossmatch(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    alice = vre.headers("alice")
    sources = catalogue()
    targets = [sources[10], sources[500], sources[1500]]
    csv = "target,ra,dec\n" + "".join(
        f"t{n},{s.ra + 0.0001},{s.dec - 0.0001}\n" for n, s in enumerate(targets)
    )
    csv += "nowhere,10.0,-60.0\n"
    up = await http.put(
        f"/datalake/files/user.alice/ivoa/{uid}/targets.csv", content=csv.encode(), headers=alice
    )
    assert up.status_code in (200, 201), up.text
    radius = 0.01
    adql = (
        "SELECT u.target, m.id, m.mag FROM TAP_UPLOAD.targets AS u JOIN "
        f"{TABLE} AS m ON 1 = CONTAINS(POINT('ICRS', m.ra, m.dec), "
        f"CIRCLE('ICRS', u.ra, u.dec, {radius}))"
    )
    body = {
        "service": TAP,
        "adql": adql,
        "upload": {"did": f"user.alice:ivoa/{uid}/targets.csv", "table_name": "targets"},
        "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/xmatch.vot"},
    }
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 202, answer.text  # uploads run as async jobs
    job = await poll(
        http, answer.headers["location"], alice, lambda b: b["phase"] not in ("QUEUED", "EXECUTING")
    )
    assert job["phase"] == "COMPLETED", job["error"]
    expected = set()
    for n, t in enumerate(targets):
        for s in sources:
            if angular_distance(t.ra + 0.0001, t.dec - 0.0001, s.ra, s.dec) < radius:
                expected.add((f"t{n}", s.id))
    table = read_table(await fetch_result(http, job["result"]["did"], alice), "votable")
    got = {(str(r["target"]), int(r["id"])) for r in table}
    assert got == expected
    assert {t for t, _ in got} == {"t0", "t1", "t2"}
    did = await http.get(f"/datalake/dids/user.alice/ivoa/{uid}/xmatch.vot", headers=alice)
    assert did.json()["metadata"]["ivoa_upload"] == f"user.alice:ivoa/{uid}/targets.csv"


# ---------------------------------------------------------------------- errors


async def test_malformed_adql_gets_the_service_message(
    http: httpx.AsyncClient, vre: Vre, uid: str
) -> None:
    alice = vre.headers("alice")
    did = f"user.alice:ivoa/{uid}/bad.vot"
    body = {
        "service": TAP,
        "adql": f"SELEC id FROM {TABLE}",
        "mode": "sync",
        "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/bad.vot"},
    }
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "Could not parse your query" in problem["detail"]  # DaCHS's own words …
    assert "col:1" in problem["detail"]  # … with where
    assert problem["errors"][0]["loc"] == ["body", "adql"]
    assert await absent(http, did, alice)
    jobs = (await http.get("/ivoa/queries", headers=alice)).json()["items"]
    failed = next(j for j in jobs if j["destination"] == did)
    assert failed["phase"] == "ERROR"
    assert "Could not parse" in failed["error"]["detail"]

    unknown_column = dict(body, adql=f"SELECT nope FROM {TABLE}")
    answer = await http.post("/ivoa/queries", json=unknown_column, headers=alice)
    assert answer.status_code == 422
    assert "nope" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"service": "nope"}, ["body", "service"]),
        ({"adql": "   "}, ["body", "adql"]),
        ({"adql": "SELECT 1 " + "x" * 30_000}, ["body", "adql"]),
        ({"maxrec": 10_000_000}, ["body", "maxrec"]),
        ({"timeout_seconds": 1e6}, ["body", "timeout_seconds"]),
        ({"adql": None, "cone": {"ra": 1, "dec": 2, "radius": 0.1}}, ["body", "adql"]),
        ({"destination": {"scope": "user.alice", "format": "csv"}}, ["body", "destination"]),
        ({"destination": {"scope": "user.alice", "project": "x1"}}, ["body", "destination"]),
    ],
)
async def test_invalid_requests_refused_before_the_service(
    http: httpx.AsyncClient, vre: Vre, change: dict[str, Any], loc: list[str]
) -> None:
    body = {"service": TAP, "adql": "SELECT 1", "destination": {"scope": "user.alice"}}
    body.update(change)
    answer = await http.post("/ivoa/queries", json=body, headers=vre.headers("alice"))
    assert answer.status_code == 422, answer.text
    locs = [e["loc"][: len(loc)] for e in answer.json()["errors"]]
    assert loc in locs, answer.json()


@pytest.mark.parametrize(
    "cone",
    [{"ra": 10, "dec": 95, "radius": 1}, {"ra": 400, "dec": 0, "radius": 1},
     {"ra": 10, "dec": 0, "radius": 0}],
)  # fmt: skip
async def test_bad_cone_refused(http: httpx.AsyncClient, vre: Vre, cone: dict[str, float]) -> None:
    body = {"service": SCS, "cone": cone, "destination": {"scope": "user.alice"}}
    answer = await http.post("/ivoa/queries", json=body, headers=vre.headers("alice"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["loc"][:2] == ["body", "cone"]


async def test_existing_destination_conflicts(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    alice = vre.headers("alice")
    name = f"ivoa/{uid}/taken.vot"
    up = await http.put(f"/datalake/files/user.alice/{name}", content=b"x", headers=alice)
    assert up.status_code in (200, 201), up.text
    body = {"service": TAP, "adql": "SELECT TOP 1 id FROM vrecat.main", "mode": "sync",
            "destination": {"scope": "user.alice", "name": name}}  # fmt: skip
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 409, answer.text


async def test_slow_query_times_out_and_is_aborted(
    http: httpx.AsyncClient, vre: Vre, uid: str
) -> None:
    alice = vre.headers("alice")
    did = f"user.alice:ivoa/{uid}/slow.vot"
    body = {"service": TAP, "adql": SLOW_ADQL, "mode": "async", "timeout_seconds": 2,
            "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/slow.vot"}}  # fmt: skip
    try:
        answer = await http.post("/ivoa/queries", json=body, headers=alice)
        assert answer.status_code == 202, answer.text
        job = await poll(
            http, answer.headers["location"], alice,
            lambda b: b["phase"] not in ("QUEUED", "EXECUTING"), within=30,
        )  # fmt: skip
        assert job["phase"] == "ERROR"
        assert job["error"]["status"] == 504, job["error"]
        assert await absent(http, did, alice)
    finally:
        vre.dachs.cancel_queries()


async def test_cancel_stops_the_query(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    alice = vre.headers("alice")
    did = f"user.alice:ivoa/{uid}/cancelled.vot"
    name = f"ivoa/{uid}/cancelled.vot"
    body = {"service": TAP, "adql": SLOW_ADQL, "mode": "async",
            "destination": {"scope": "user.alice", "name": name}}  # fmt: skip
    try:
        answer = await http.post("/ivoa/queries", json=body, headers=alice)
        assert answer.status_code == 202, answer.text
        path = answer.headers["location"]
        await poll(http, path, alice, lambda b: b["phase"] == "EXECUTING")
        bob = await http.post(f"{path}/cancel", headers=vre.headers("bob"))
        assert bob.status_code == 404
        cancelled = await http.post(f"{path}/cancel", headers=alice)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["phase"] == "ABORTED"
        again = await http.post(f"{path}/cancel", headers=alice)
        assert again.status_code == 409, again.text
        assert await absent(http, did, alice)
    finally:
        vre.dachs.cancel_queries()


async def test_service_stopped_mid_query(http: httpx.AsyncClient, vre: Vre, uid: str) -> None:
    alice = vre.headers("alice")
    did = f"user.alice:ivoa/{uid}/interrupted.vot"
    name = f"ivoa/{uid}/interrupted.vot"
    body = {"service": TAP, "adql": SLOW_ADQL, "mode": "async",
            "destination": {"scope": "user.alice", "name": name}}  # fmt: skip
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 202, answer.text
    path = answer.headers["location"]
    await poll(http, path, alice, lambda b: b["phase"] == "EXECUTING")
    with vre.dachs.outage():
        job = await poll(
            http, path, alice, lambda b: b["phase"] not in ("QUEUED", "EXECUTING"), within=30
        )
        assert job["phase"] == "ERROR"
        assert job["error"]["status"] in (502, 503), job["error"]
        assert await absent(http, did, alice)
        # while it is down, a new query fails fast with 503 and writes nothing
        quick = {
            "service": TAP,
            "adql": "SELECT TOP 1 id FROM vrecat.main",
            "mode": "sync",
            "destination": {"scope": "user.alice", "name": f"ivoa/{uid}/down.vot"},
        }
        down = await http.post("/ivoa/queries", json=quick, headers=alice)
        assert down.status_code == 503, down.text
        assert await absent(http, f"user.alice:ivoa/{uid}/down.vot", alice)


# ---------------------------------------------------------------------- acceptance


async def test_alice_cone_query_into_her_project_feeds_a_workflow(
    http: httpx.AsyncClient, vre: Vre, uid: str
) -> None:
    alice, carol = vre.headers("alice"), vre.headers("carol")
    slug = f"vo-{uid}"
    scope = f"proj.{slug}"
    created = await http.post(
        "/projects", json={"name": "VO cone", "slug": slug, "visibility": "private"},
        headers=alice,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    body = {"service": SCS, "cone": {"ra": 151.0, "dec": 3.0, "radius": 0.3}, "maxrec": 500,
            "destination": {"project": slug, "name": "cone.vot"}}  # fmt: skip
    refused = await http.post("/ivoa/queries", json=body, headers=carol)
    assert refused.status_code == 404, refused.text  # a private project, outside carol's
    answer = await http.post("/ivoa/queries", json=body, headers=alice)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["project"] == slug
    assert job["result"]["did"] == f"{scope}:cone.vot"

    did = await http.get(f"/datalake/dids/{scope}/cone.vot", headers=alice)
    assert did.status_code == 200, did.text
    assert did.json()["metadata"]["ivoa_service"] == SCS
    assert did.json()["metadata"]["ivoa_rows"] == job["result"]["rows"] > 0
    size = did.json()["bytes"]

    spec = {
        "version": "0.9.4",
        "inputs": {"parameters": {}},
        "workflow": {"type": "serial", "specification": {"steps": [{
            "name": "size", "environment": "docker.io/library/debian:bookworm-slim",
            "commands": ["mkdir -p results && wc -c < cone.vot > results/size.txt"],
        }]}},
        "outputs": {"files": ["results/size.txt"]},
    }  # fmt: skip
    submission = {"spec": spec, "inputs": [{"did": f"{scope}:cone.vot"}], "project": slug,
                  "name": "cone-size"}  # fmt: skip
    submitted = await http.post("/workflows/runs", json=submission, headers=alice)
    assert submitted.status_code == 201, submitted.text
    run = await poll(
        http, f"/workflows/runs/{submitted.json()['id']}", alice,
        lambda b: b["status"] not in ("queued", "running"), within=120,
    )  # fmt: skip
    assert run["status"] == "finished", run.get("error")
    output = next(o["did"] for o in run["outputs"] if o["path"] == "results/size.txt")
    assert (await fetch_result(http, output, alice)).decode().strip() == str(size)

    # provenance: the run's output ← run ← cone.vot ← the query (a `query` activity) ← the
    # VO service
    params: dict[str, str | int] = {"entity": f"did:{output}", "direction": "up", "depth": 5}
    deadline = time.monotonic() + 30
    while True:
        graph = await http.get("/provenance", params=params, headers=alice)
        ids = (
            {n["id"] for n in graph.json().get("nodes", [])} if graph.status_code == 200 else set()
        )
        if vre.dachs.scs_url in ids:
            break
        assert time.monotonic() < deadline, graph.text
        await asyncio.sleep(0.3)
    assert f"did:{scope}:cone.vot" in ids
    (query,) = [n for n in graph.json()["nodes"] if n["type"] == "query"]
    assert query["category"] == "activity"
    assert query["id"].startswith("query:")
    assert query["attributes"]["query_id"] == job["id"]
    assert query["attributes"]["service_type"] == "scs"
    assert query["actor"] == "alice"
    edges = {(e["source"], e["target"], e["relation"]) for e in graph.json()["edges"]}
    assert (query["id"], vre.dachs.scs_url, "used") in edges
    assert (f"did:{scope}:cone.vot", query["id"], "wasGeneratedBy") in edges
    prov = await http.get("/provenance", params={**params, "format": "prov-json"}, headers=alice)
    assert prov.status_code == 200, prov.text
    assert prov.json()["activity"][query["id"]]["prov:type"]["$"] == "vre:query"
