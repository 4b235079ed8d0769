"""One search: projects for real, service sources through their ports; slow sources → partial."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from services.gateway.tests.conftest import gateway_settings
from services.gateway.tests.gateway_support import RecordingProvisioner, Users, create_project
from vre_common.app import create_base_app
from vre_common.deps import CurrentUser
from vre_common.errors import BadGatewayError, InvalidTokenError
from vre_common.link import GatewayLink, attach_link
from vre_common.testing import TestIssuer, app_client
from vre_gateway.backends.search import (
    DatalakeDidSource,
    SearchContext,
    SearchSource,
    SourceSkipped,
    did_query,
)
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import remote_search_sources
from vre_gateway.main import create_app
from vre_gateway.models.search import SearchHit


class SlowSource:
    """A source that answers after ``delay`` seconds (a service under load)."""

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.types = frozenset({"run"})
        self.delay = delay

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        await asyncio.sleep(self.delay)
        return [SearchHit(type="run", id="r1", title=f"{query} run")]


class BrokenSource:
    """A source whose service answers an error."""

    name = "broken"
    types = frozenset({"software"})

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        raise BadGatewayError("catalogue answered 500")


@pytest.fixture
async def searching(
    gw_db_url: str, issuer: TestIssuer, as_user: Users
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        gw_db_url,
        issuer,
        search={"sources": ["projects"], "timeout_seconds": 0.2, "timeouts": {"fast": 1.0}},
    )
    sources: list[SearchSource] = [SlowSource("fast", 0.0), SlowSource("slow", 5.0), BrokenSource()]
    app = create_app(
        settings,
        validator=issuer.validator(),
        provisioner=RecordingProvisioner(),
        search_sources=sources,
    )
    async with app_client(app) as client:
        await create_project(client, as_user("alice"), "dark-matter", name="Dark matter limits")
        await create_project(client, as_user("carol"), "dark-secret", name="Dark secret")
        await create_project(
            client, as_user("carol"), "dark-public", name="Dark public", visibility="public"
        )
        yield client


async def test_a_slow_source_makes_the_answer_partial_not_slow(
    searching: httpx.AsyncClient, as_user: Users
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    r = await searching.get("/search", params={"q": "dark"}, headers=as_user("alice"))
    elapsed = loop.time() - start
    assert r.status_code == 200, r.text
    body = r.json()
    assert elapsed < 2.0
    assert body["partial"] is True
    assert body["sources"] == {"projects": "ok", "fast": "ok", "slow": "timeout", "broken": "error"}
    assert body["items"] == [
        {
            "type": "project",
            "id": "dark-matter",
            "title": "Dark matter limits",
            "project": "dark-matter",
            "links": {"self": "/projects/dark-matter", "scope": "/datalake/dids/proj.dark-matter"},
        },
        {
            "type": "project",
            "id": "dark-public",
            "title": "Dark public",
            "project": "dark-public",
            "links": {"self": "/projects/dark-public", "scope": "/datalake/dids/proj.dark-public"},
        },
        {"type": "run", "id": "r1", "title": "dark run", "project": None, "links": {}},
    ]
    assert "dark-secret" not in {i["id"] for i in body["items"]}


async def test_types_select_sources(searching: httpx.AsyncClient, as_user: Users) -> None:
    r = await searching.get(
        "/search", params={"q": "dark", "types": "project"}, headers=as_user("alice")
    )
    body = r.json()
    assert body["partial"] is False
    assert body["sources"] == {
        "projects": "ok",
        "fast": "skipped",
        "slow": "skipped",
        "broken": "skipped",
    }
    assert {i["type"] for i in body["items"]} == {"project"}
    assert (await searching.get("/search", params={"q": "dark"})).status_code == 401
    assert (await searching.get("/search", headers=as_user("alice"))).status_code == 422


# ----------------------------------------------------------------------------- HTTP adapters


def _stand_in_services(issuer: TestIssuer) -> FastAPI:
    """Minimal list endpoints in the shapes the services document (RunPage, SearchResult,
    DepositionList, NDJSON DIDs), so the adapters' real HTTP code runs."""
    app = create_base_app(service="standin", title="standin", description="standin")
    attach_link(app, GatewayLink(validator=issuer.validator()))

    @app.get("/catalogue/software/search")
    async def software(q: str, size: int, user: CurrentUser) -> dict[str, object]:
        return {
            "total": 1,
            "page": 1,
            "size": size,
            "items": [{"id": 7, "name": f"{q}py"}],
            "facets": {},
        }

    @app.get("/workflows/runs")
    async def runs(name: str, user: CurrentUser) -> dict[str, object]:
        return {
            "items": [{"id": "r9", "name": f"{name} fit", "project": "atlas"}],
            "total": 1,
            "page": 1,
            "size": 20,
        }

    @app.get("/zenodo/depositions")
    async def depositions(user: CurrentUser) -> dict[str, object]:
        return {
            "items": [
                {"id": "d1", "title": "Dark limits", "doi": "10.5281/Zenodo.42"},
                {"id": "d2", "title": "Other paper"},
            ]
        }

    @app.get("/datalake/dids/{scope}")
    async def dids(scope: str, request: Request, user: CurrentUser) -> StreamingResponse:
        pattern = request.query_params["name"]

        async def lines() -> AsyncIterator[bytes]:
            for name in ("dark/a.root", "bright/b.root"):
                if pattern.strip("*") in name:
                    yield (
                        json.dumps({"scope": scope, "name": name, "type": "file"}) + "\n"
                    ).encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


async def test_http_sources_map_every_service_to_one_shape(issuer: TestIssuer) -> None:
    from vre_common.auth import Principal
    from vre_common.policy import ProjectAccess, Role, Visibility

    app = _stand_in_services(issuer)
    token = issuer.token("alice")
    principal: Principal = await issuer.validator().validate(token)
    ctx = SearchContext(
        principal=principal,
        token=token,
        projects=[
            ProjectAccess(
                project="atlas", scope="proj.atlas", visibility=Visibility.PRIVATE, role=Role.MEMBER
            )
        ],
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as http:
        settings = GatewaySettings(
            mode="distributed",
            service_urls={
                n: f"http://svc/{n}" for n in ("datalake", "catalogue", "workflows", "zenodo")
            },
            # ivoa's source is tested with a real VO server in services/ivoa/tests
            search={"sources": ["projects", "datalake", "catalogue", "workflows", "zenodo"]},
        )
        sources = remote_search_sources(settings, http)  # what the gateway builds from settings
        assert [s.name for s in sources] == ["datalake", "catalogue", "workflows", "zenodo"]
        hits = [h for s in sources for h in await s.search(ctx, "dark", 10)]
        anonymous = SearchContext(principal=principal, token=None, projects=[])
        with pytest.raises(InvalidTokenError):
            await sources[1].search(anonymous, "dark", 10)
    assert [h.model_dump() for h in hits] == [
        {
            "type": "did",
            "id": "proj.atlas:dark/a.root",
            "title": "dark/a.root",
            "project": "atlas",
            "links": {
                "self": "/datalake/dids/proj.atlas/dark/a.root",
                "provenance": "/provenance?entity=did:proj.atlas:dark/a.root",
            },
        },
        {
            "type": "software",
            "id": "7",
            "title": "darkpy",
            "project": None,
            "links": {"self": "/catalogue/software/7"},
        },
        {
            "type": "run",
            "id": "r9",
            "title": "dark fit",
            "project": "atlas",
            "links": {"self": "/workflows/runs/r9", "provenance": "/provenance?entity=run:r9"},
        },
        {
            "type": "deposition",
            "id": "d1",
            "title": "Dark limits",
            "project": None,
            "links": {
                "self": "/zenodo/depositions/d1",
                "doi": "https://doi.org/10.5281/Zenodo.42",
                "provenance": "/provenance?entity=doi:10.5281/zenodo.42",
            },
        },
    ]


# ------------------------------------------------------------------------- free text → DIDs


@pytest.mark.parametrize(
    ("text", "terms", "meta", "pattern"),
    [
        ("events", ("events",), (), "*events*"),
        ("best limit", ("best", "limit"), (), "*limit*"),
        ('"results/best.csv"', ("results", "best.csv"), (), "*best.csv*"),
        ("café crème", ("cafe", "creme"), (), "*creme*"),
        ("events* run?42", ("events", "run", "42"), (), "*events*"),
        ("../../etc/passwd", ("etc", "passwd"), (), "*passwd*"),
        ("raw datatype=raw run_number>=42", ("raw",), ("datatype=raw", "run_number>=42"), "*raw*"),
        ("datatype=raw", (), ("datatype=raw",), "*"),
    ],
)
def test_free_text_becomes_a_did_query(
    text: str, terms: tuple[str, ...], meta: tuple[str, ...], pattern: str
) -> None:
    query = did_query(text)
    assert query is not None
    assert (query.terms, query.meta, query.name_pattern) == (terms, meta, pattern)


@pytest.mark.parametrize("text", ["日本語", "«»", "*", "''", "–", "..", "/"])
def test_text_no_did_name_can_hold_is_no_query(text: str) -> None:
    assert did_query(text) is None


def test_every_term_must_occur_in_a_name_in_any_order() -> None:
    query = did_query("limit Best")
    assert query is not None
    assert query.matches("results/best-limit.csv")
    assert not query.matches("results/best.csv")


async def test_datalake_source_sends_valid_filters_and_skips_what_it_cannot_express(
    issuer: TestIssuer,
) -> None:
    """The adapter's requests pass the datalake's own pattern check; unsearchable text is
    'skipped' (not an error, so the answer is not partial)."""
    from vre_common.auth import Principal
    from vre_common.policy import ProjectAccess, Role, Visibility
    from vre_common.types import DID_NAME_FILTER_PATTERN  # = the datalake's own check

    seen: list[tuple[str, list[str]]] = []
    app = create_base_app(service="standin", title="standin", description="standin")
    attach_link(app, GatewayLink(validator=issuer.validator()))

    @app.get("/datalake/dids/{scope}")
    async def dids(scope: str, request: Request, user: CurrentUser) -> StreamingResponse:
        pattern = request.query_params["name"]
        assert re.match(DID_NAME_FILTER_PATTERN, pattern), pattern  # the datalake accepts it
        meta = request.query_params.getlist("meta")
        assert all(re.match(r"^[A-Za-z_]\w*(>=|<=|!=|=|>|<)\S+$", m) for m in meta), meta
        seen.append((pattern, meta))

        async def lines() -> AsyncIterator[bytes]:
            for name in ("best-limit.csv", "best.csv", "limits/best.csv"):
                yield (json.dumps({"scope": scope, "name": name, "type": "file"}) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    token = issuer.token("alice")
    principal: Principal = await issuer.validator().validate(token)
    ctx = SearchContext(
        principal=principal,
        token=token,
        projects=[
            ProjectAccess(
                project="atlas", scope="proj.atlas", visibility=Visibility.PRIVATE, role=Role.MEMBER
            )
        ],
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as http:
        source = DatalakeDidSource("http://svc/datalake", http, max_scopes=5)
        hits = await source.search(ctx, "“limit” BEST type=file", 10)
        with pytest.raises(SourceSkipped):
            await source.search(ctx, "日本語 «»", 10)
    assert [h.id for h in hits] == ["proj.atlas:best-limit.csv", "proj.atlas:limits/best.csv"]
    assert seen == [("*limit*", ["type=file"])]  # one pattern: typed in lower case already
