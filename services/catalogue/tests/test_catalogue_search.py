"""Full-text search, ranking, facets and pagination — the same answers on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.catalogue.tests.support.helpers import Users, codemeta

BRIDGE: dict[str, Any] = {
    "@context": "https://w3id.org/codemeta/3.0",
    "@type": "SoftwareSourceCode",
    "name": "gammalib-bridge",
    "description": "Converts GammaLib models so that gammapy can read them.",
    "softwareVersion": "0.3",
    "datePublished": "2022-06-01",
    "license": "GPL-3.0-or-later",
    "readme": "https://example.org/gammalib-bridge",
    "author": {"@type": "Person", "givenName": "Hugo", "familyName": "Lind"},
    "maintainer": {"@type": "Person", "givenName": "Hugo", "familyName": "Lind"},
    "keywords": "converters, GammaLib",
    "programmingLanguage": "C++",
}


@pytest.fixture
async def catalogue(client: httpx.AsyncClient, as_user: Users) -> dict[str, int]:
    ids = {}
    for document in (
        codemeta("gammapy_codemeta3.json"),
        codemeta("ctapipe_codemeta2.json"),
        codemeta("eossr_codemeta2.json"),
        BRIDGE,
    ):
        response = await client.post("/software", json=document, headers=as_user("alice"))
        assert response.status_code == 201, response.text
        ids[document["name"]] = response.json()["software"]["id"]
    return ids


async def _search(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/software/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["items"]]


async def test_name_outranks_description(
    client: httpx.AsyncClient, catalogue: dict[str, int]
) -> None:
    body = await _search(client, q="gammapy")
    assert _names(body) == ["gammapy", "gammalib-bridge"]
    scores = [item["score"] for item in body["items"]]
    assert scores[0] > scores[1] > 0


async def test_keywords_authors_prefixes_and_stemming(
    client: httpx.AsyncClient, catalogue: dict[str, int]
) -> None:
    assert set(_names(await _search(client, q="cherenkov telescopes"))) == {"gammapy", "ctapipe"}
    assert _names(await _search(client, q="cta"))[0] == "ctapipe"  # name prefix + keyword
    assert _names(await _search(client, q="Volkov")) == ["ctapipe"]  # an author
    assert _names(await _search(client, q="dubois")) == ["eossr"]
    assert _names(await _search(client, q="reconstructions")) == ["ctapipe"]  # stemmed
    assert _names(await _search(client, q="codeme")) == ["eossr"]  # word prefix
    assert _names(await _search(client, q="codemeta zenodo")) == ["eossr"]  # every word
    assert (await _search(client, q="nonexistentword"))["total"] == 0


async def test_query_syntax_is_not_interpreted(
    client: httpx.AsyncClient, catalogue: dict[str, int]
) -> None:
    for q in ['"gammapy', "gammapy OR", "NEAR(a b)", "gamma*:&|!()", "  ", "-", "ctapipe'"]:
        response = await client.get("/software/search", params={"q": q})
        assert response.status_code == 200, (q, response.text)


async def test_facets_over_the_filtered_result(
    client: httpx.AsyncClient, catalogue: dict[str, int]
) -> None:
    body = await _search(client)
    assert body["total"] == 4
    facets = body["facets"]
    licenses = {f["value"]: f["count"] for f in facets["license"]}
    assert licenses == {"BSD-3-Clause": 2, "MIT": 1, "GPL-3.0-or-later": 1}
    assert facets["license"][0] == {"value": "BSD-3-Clause", "count": 2}
    keywords = {f["value"]: f["count"] for f in facets["keyword"]}
    assert keywords["CTA"] == 2
    assert keywords["gamma-ray astronomy"] == 2
    assert keywords["GammaLib"] == 1
    assert {f["value"]: f["count"] for f in facets["language"]} == {"Python": 3, "C++": 1}
    platforms = {f["value"]: f["count"] for f in facets["platform"]}
    assert platforms["Python 3.9"] == 3
    assert platforms["Python 3.8"] == 1
    assert facets["community"] == []

    filtered = await _search(client, license="MIT")
    assert _names(filtered) == ["eossr"]
    assert {f["value"] for f in filtered["facets"]["license"]} == {"MIT"}
    assert {f["value"] for f in filtered["facets"]["keyword"]} == {
        "ESCAPE",
        "OSSR",
        "Zenodo",
        "codemeta",
        "metadata",
    }

    both = await _search(client, q="gamma", keyword="cta")  # case-insensitive filter
    assert set(_names(both)) == {"gammapy", "ctapipe"}
    assert (await _search(client, keyword=["CTA", "DL3"]))["total"] == 0  # all must match
    assert (await _search(client, keyword="CTA", license="MIT"))["total"] == 0
    assert _names(await _search(client, language="c++")) == ["gammalib-bridge"]
    assert (await _search(client, platform="Python 3.8"))["total"] == 1


async def test_pagination(client: httpx.AsyncClient, catalogue: dict[str, int]) -> None:
    seen = []
    for page in (1, 2, 3, 4):
        body = await _search(client, page=page, size=1)
        assert body["total"] == 4
        assert len(body["items"]) == 1
        seen.extend(_names(body))
    assert sorted(seen) == sorted(catalogue)
    assert (await _search(client, page=5, size=1))["items"] == []
    ranked = await _search(client, q="gamma", size=1, page=2)
    assert ranked["total"] >= 2
    assert len(ranked["items"]) == 1
    too_big = await client.get("/software/search", params={"size": 1000})
    assert too_big.status_code == 422


async def test_search_follows_edits(
    client: httpx.AsyncClient, as_user: Users, catalogue: dict[str, int]
) -> None:
    entry = catalogue["eossr"]
    patched = await client.patch(
        f"/software/{entry}",
        json={"keywords": ["neutrino telescopes"], "description": "Uploads to KM3NeT archives."},
        headers=as_user("alice"),
    )
    assert patched.status_code == 200
    assert _names(await _search(client, q="km3net")) == ["eossr"]
    assert (await _search(client, q="codemeta"))["total"] == 0
    assert (await _search(client, keyword="OSSR"))["total"] == 0
    await client.delete(f"/software/{entry}", headers=as_user("alice"))
    assert (await _search(client, q="km3net"))["total"] == 0
    assert (await _search(client))["total"] == 3
