"""The OSSR harvest against a local Zenodo records stand-in that enforces Zenodo's limits."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from services.catalogue.tests.support.helpers import Users, codemeta
from services.catalogue.tests.support.zenodo_records import TOKEN, ZenodoRecordsStandIn
from vre_catalogue.config import CatalogueSettings, ZenodoSourceSettings
from vre_catalogue.main import create_app
from vre_common.testing import TestIssuer, app_client, free_port

HOUR = timedelta(hours=1)


async def _harvest(
    client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    """Start a harvest, wait for it, return the finished job."""
    started = await client.post("/harvest", json=body or None, headers=headers)
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    await app.state.factory.tasks.wait()
    job = await client.get(f"/harvest/{started.json()['id']}", headers=headers)
    assert job.status_code == 200
    result: dict[str, Any] = job.json()
    return result


async def _entries(client: httpx.AsyncClient, **params: Any) -> dict[str, dict[str, Any]]:
    found = await client.get("/software/search", params={"size": 100, **params})
    return {item["name"]: item for item in found.json()["items"]}


@asynccontextmanager
async def _app(
    settings: CatalogueSettings, issuer: TestIssuer
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, validator=issuer.validator())
    async with app_client(app) as client:
        yield app, client


async def test_codemeta_file_preferred_metadata_as_fallback(
    app: FastAPI, client: httpx.AsyncClient, zenodo: ZenodoRecordsStandIn, as_user: Users
) -> None:
    zenodo.add_record(title="Gammapy", version="v1.2", codemeta=codemeta("gammapy_codemeta3.json"))
    zenodo.add_record(
        title="agnpy",
        version="v0.4.0",
        keywords=["AGN", "blazars"],
        creators=[{"name": "Martin, Alice", "orcid": "0000-0002-8778-9328"}],
        contributors=[{"name": "Keller, Bruno", "type": "ContactPerson"}],
        related_identifiers=[
            {"identifier": "https://agnpy.readthedocs.io", "relation": "isDocumentedBy"},
            {"identifier": "https://github.com/cosimoNigro/agnpy", "relation": "isSupplementTo"},
        ],
    )
    broken = zenodo.add_record(title="jetset", version="1.3.0", codemeta=b"{not json")
    tampered = zenodo.add_record(
        title="astroquery-escape", version="0.1", codemeta=codemeta("eossr_codemeta2.json")
    )
    tampered["files"][0]["checksum"] = "md5:" + hashlib.md5(b"other").hexdigest()
    zenodo.add_record(title="CTA simulated data", version="1", resource_type="dataset")
    zenodo.add_record(title="other community tool", version="1", community="other")
    zenodo.add_record(title="", version="1", description="")
    zenodo.backdate(HOUR)

    job = await _harvest(client, app, as_user("curator"))
    assert job["status"] == "succeeded", job
    assert job["community"] == "escape2020"
    assert job["since"] is None
    assert (job["total"], job["processed"], job["created"], job["failed"]) == (5, 5, 4, 1)
    assert job["progress"] == 1.0
    notes = {i["record_id"]: i["msg"] for i in job["issues"]}
    assert "not valid JSON" in notes[str(broken["id"])]
    assert "md5" in notes[str(tampered["id"])]
    assert zenodo.file_downloads == 3

    entries = await _entries(client)
    assert set(entries) == {"gammapy", "agnpy", "jetset", "astroquery-escape"}
    assert all(e["community"] == "escape2020" for e in entries.values())
    gammapy = (await client.get(f"/software/{entries['gammapy']['id']}")).json()
    assert gammapy["latest_version"] == "1.2"  # from the codemeta.json, not Zenodo's "v1.2"
    assert gammapy["authors"][0]["orcid"] == "0000-0002-8778-9328"
    assert gammapy["registrant"] == "zenodo:escape2020"
    assert gammapy["source"] == "harvest"
    assert len(gammapy["dois"]) == 2  # its own identifier and the record's DOI
    agnpy = (await client.get(f"/software/{entries['agnpy']['id']}")).json()
    assert agnpy["code_repository"] == "https://github.com/cosimoNigro/agnpy"
    assert agnpy["maintainers"][0]["family_name"] == "Keller"
    assert agnpy["licenses"] == ["MIT"]
    versions = (await client.get(f"/software/{entries['agnpy']['id']}/versions")).json()
    assert versions["items"][0]["zenodo_record_id"] is not None
    assert "funding" in {w["loc"][0] for w in versions["items"][0]["warnings"]}
    # what the harvest took with gaps is kept, its problems recorded as warnings
    jetset = (await client.get(f"/software/{entries['jetset']['id']}/versions")).json()
    found = {(w["loc"][0], w["type"]) for w in jetset["items"][0]["warnings"]}
    assert ("maintainer", "missing") in found
    facets = (await client.get("/software/search")).json()["facets"]
    assert facets["community"] == [{"value": "escape2020", "count": 4}]
    assert (await client.get("/software/search", params={"community": "escape2020"})).json()[
        "total"
    ] == 4


async def test_idempotent_and_incremental(
    app: FastAPI, client: httpx.AsyncClient, zenodo: ZenodoRecordsStandIn, as_user: Users
) -> None:
    first = zenodo.add_record(title="lstchain", version="0.9.0", keywords=["LST"])
    concept = int(first["conceptrecid"])
    zenodo.add_record(title="lstchain", version="0.10.0", concept=concept)
    other = zenodo.add_record(title="pyirf", version="0.10.1", description="<p>IRFs</p>")
    zenodo.backdate(2 * HOUR)

    job1 = await _harvest(client, app, as_user("admin"))
    assert (job1["created"], job1["versions_added"], job1["unchanged"]) == (2, 1, 0)
    lstchain = (await _entries(client))["lstchain"]
    assert lstchain["latest_version"] == "0.10.0"
    detail = (await client.get(f"/software/{lstchain['id']}")).json()
    assert detail["zenodo_concept_id"] == str(concept)
    assert detail["versions"] == ["0.10.0", "0.9.0"]

    job2 = await _harvest(client, app, as_user("admin"))
    assert job2["since"] == job1["until"]  # incremental: only what changed since
    assert (job2["total"], job2["processed"], job2["created"], job2["versions_added"]) == (
        0,
        0,
        0,
        0,
    )

    job3 = await _harvest(client, app, as_user("admin"), full=True)
    assert job3["since"] is None
    assert (job3["processed"], job3["unchanged"], job3["created"], job3["versions_added"]) == (
        3,
        3,
        0,
        0,
    )

    zenodo.touch(other["id"], description="<p>Instrument response functions for CTA</p>")
    zenodo.add_record(title="lstchain", version="0.11.0", concept=concept)
    job4 = await _harvest(client, app, as_user("admin"))
    assert (job4["total"], job4["updated"], job4["versions_added"], job4["created"]) == (
        2,
        1,
        1,
        0,
    )
    entries = await _entries(client)
    assert set(entries) == {"lstchain", "pyirf"}
    assert entries["lstchain"]["latest_version"] == "0.11.0"
    assert entries["pyirf"]["description"] == "Instrument response functions for CTA"
    found = await client.get("/software/search", params={"q": "instrument response"})
    assert [i["name"] for i in found.json()["items"]] == ["pyirf"]

    listing = await client.get("/harvest", headers=as_user("admin"))
    assert [j["id"] for j in listing.json()["items"]] == [
        job4["id"],
        job3["id"],
        job2["id"],
        job1["id"],
    ]


async def test_slices_by_date_beyond_the_result_window(
    settings: CatalogueSettings,
    issuer: TestIssuer,
    zenodo: ZenodoRecordsStandIn,
    as_user: Users,
) -> None:
    zenodo.result_window = 30
    start = datetime.now(UTC) - 10 * HOUR
    for n in range(80):
        zenodo.add_record(
            title=f"tool-{n:03d}", version="1.0", updated=start + timedelta(minutes=3 * n)
        )
    narrow = settings.model_copy(
        update={"zenodo": settings.zenodo.model_copy(update={"result_window": 30})}
    )
    async with _app(narrow, issuer) as (app, client):
        job = await _harvest(client, app, as_user("curator"))
        assert job["status"] == "succeeded", job
        assert (job["total"], job["created"], job["failed"]) == (80, 80, 0)
        assert job["pages"] >= 4
        ranges = {q["q"] for q in zenodo.queries}
        assert len(ranges) > 3  # sliced by date
        for query in zenodo.queries:
            assert int(query["size"]) <= 25  # anonymous cap
            assert int(query["page"]) * int(query["size"]) <= 30  # the window
            assert query["communities"] == "escape2020"
            assert query["type"] == "software"
        assert (await client.get("/software/search")).json()["total"] == 80


async def test_page_size_follows_the_token(
    settings: CatalogueSettings,
    issuer: TestIssuer,
    zenodo: ZenodoRecordsStandIn,
    as_user: Users,
) -> None:
    for n in range(30):
        zenodo.add_record(title=f"pkg-{n}", version="1", updated=datetime.now(UTC) - HOUR)
    async with httpx.AsyncClient(base_url=zenodo.base_url) as raw:
        refused = await raw.get("/api/records", params={"size": 26})
        assert refused.status_code == 400  # the stand-in enforces Zenodo's cap
        allowed = await raw.get(
            "/api/records", params={"size": 100}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert allowed.status_code == 200
    with_token = settings.model_copy(
        update={"zenodo": settings.zenodo.model_copy(update={"token": SecretStr(TOKEN)})}
    )
    async with _app(with_token, issuer) as (app, client):
        job = await _harvest(client, app, as_user("curator"))
        assert (job["status"], job["created"], job["pages"]) == ("succeeded", 30, 1)
        assert max(int(q["size"]) for q in zenodo.queries) == 100


async def test_harvest_links_registered_releases(
    app: FastAPI, client: httpx.AsyncClient, zenodo: ZenodoRecordsStandIn, as_user: Users
) -> None:
    registered = await client.post(
        "/software", json=codemeta("ctapipe_codemeta2.json"), headers=as_user("alice")
    )
    entry_id = registered.json()["software"]["id"]
    record = zenodo.add_record(
        title="ctapipe", version="0.20.0", codemeta=codemeta("ctapipe_codemeta2.json")
    )
    zenodo.backdate(HOUR)
    job = await _harvest(client, app, as_user("curator"))
    assert (job["created"], job["versions_added"], job["updated"]) == (0, 0, 1)
    entry = (await client.get(f"/software/{entry_id}")).json()
    assert entry["registrant"] == "alice"  # still hers
    assert entry["community"] == "escape2020"
    assert entry["zenodo_concept_id"] == record["conceptrecid"]
    assert f"10.5281/zenodo.{record['id']}" in entry["dois"]
    again = await _harvest(client, app, as_user("curator"), full=True)
    assert (again["unchanged"], again["updated"]) == (1, 0)


async def test_who_may_harvest(
    app: FastAPI, client: httpx.AsyncClient, zenodo: ZenodoRecordsStandIn, as_user: Users
) -> None:
    assert (await client.post("/harvest")).status_code == 401
    refused = await client.post("/harvest", headers=as_user("alice"))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/curators-only")
    assert (await client.get("/harvest/1")).status_code == 401
    assert (await client.get("/harvest/999", headers=as_user("alice"))).status_code == 404
    bad = await client.post("/harvest", json={"community": "a/b"}, headers=as_user("admin"))
    assert bad.status_code == 422

    zenodo.delay = 0.3
    first = await client.post("/harvest", headers=as_user("admin"))
    assert first.status_code == 202
    second = await client.post("/harvest", headers=as_user("curator"))
    assert second.status_code == 409
    assert second.json()["job_id"] == first.json()["id"]
    other = await client.post("/harvest", json={"community": "km3net"}, headers=as_user("admin"))
    assert other.status_code == 202  # another community may run alongside
    await app.state.factory.tasks.wait()


async def test_unreachable_zenodo_fails_the_job(
    settings: CatalogueSettings, issuer: TestIssuer, as_user: Users
) -> None:
    dead = settings.model_copy(
        update={"zenodo": ZenodoSourceSettings(url=f"http://127.0.0.1:{free_port()}")}
    )
    async with _app(dead, issuer) as (app, client):
        job = await _harvest(client, app, as_user("curator"))
        assert job["status"] == "failed"
        assert "unreachable" in job["detail"]
        assert job["finished_at"] is not None
