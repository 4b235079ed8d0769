"""Exports: codemeta.json back as registered, Zenodo metadata by the OSSR crosswalk."""

from __future__ import annotations

import httpx

from services.catalogue.tests.support.helpers import Users, codemeta
from vre_catalogue.services.crosswalk import codemeta_from_zenodo, html_to_text


async def test_codemeta_round_trip(client: httpx.AsyncClient, as_user: Users) -> None:
    document = codemeta("gammapy_codemeta3.json")
    created = await client.post("/software", json=document, headers=as_user("alice"))
    entry_id = created.json()["software"]["id"]
    exported = await client.get(f"/software/{entry_id}/codemeta")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/ld+json")
    assert exported.json() == document


async def test_zenodo_crosswalk(client: httpx.AsyncClient, as_user: Users) -> None:
    created = await client.post(
        "/software", json=codemeta("ctapipe_codemeta2.json"), headers=as_user("alice")
    )
    entry_id = created.json()["software"]["id"]
    response = await client.get(f"/software/{entry_id}/zenodo")
    assert response.status_code == 200
    meta = response.json()["metadata"]
    assert meta["upload_type"] == "software"
    assert meta["title"] == "ctapipe"
    assert meta["version"] == "0.20.0"
    assert meta["publication_date"] == "2023-09-11"
    assert meta["license"] == "bsd-3-clause"
    assert meta["creators"] == [
        {
            "name": "Volkov, Dmitri",
            "affiliation": "TU Dortmund University",
            "orcid": "0000-0001-8096-7921",
        },
        {"name": "Schmidt, Emma", "orcid": "0000-0003-0810-0332"},
    ]
    assert meta["contributors"] == [
        {"name": "Schmidt, Emma", "orcid": "0000-0003-0810-0332", "type": "ContactPerson"}
    ]
    assert {
        "identifier": "https://ctapipe.readthedocs.io/",
        "relation": "isDocumentedBy",
        "resource_type": "publication-softwaredocumentation",
    } in meta["related_identifiers"]
    assert {
        "identifier": "https://github.com/cta-observatory/ctapipe",
        "relation": "isDerivedFrom",
        "resource_type": "software",
    } in meta["related_identifiers"]
    assert meta["grants"] == [{"id": "10.13039/501100000780::824064"}]
    assert meta["communities"] == [{"identifier": "escape2020"}]
    assert "CTA" in meta["keywords"]


async def test_zenodo_export_of_an_older_release(client: httpx.AsyncClient, as_user: Users) -> None:
    first = codemeta("eossr_codemeta2.json")
    created = await client.post("/software", json=first, headers=as_user("alice"))
    entry_id = created.json()["software"]["id"]
    second = {**first, "softwareVersion": "2.4.0", "datePublished": "2025-01-10"}
    await client.post("/software", json=second, headers=as_user("alice"))
    latest = await client.get(f"/software/{entry_id}/zenodo")
    older = await client.get(f"/software/{entry_id}/zenodo", params={"version": "2.3.1"})
    assert latest.json()["metadata"]["version"] == "2.4.0"
    assert older.json()["metadata"]["version"] == "2.3.1"
    # an organisation keeps its name
    assert older.json()["metadata"]["creators"][1] == {"name": "ESCAPE OSSR team"}
    missing = await client.get(f"/software/{entry_id}/zenodo", params={"version": "0.1"})
    assert missing.status_code == 404


def test_zenodo_metadata_to_codemeta() -> None:
    hit = {
        "id": 7,
        "doi": "10.5281/zenodo.7",
        "metadata": {
            "title": "agnpy",
            "description": "<p>Modelling jetted <b>AGN</b> &amp; blazars.</p><p>Second.</p>",
            "version": "v0.4.0",
            "publication_date": "2023-01-02",
            "license": {"id": "bsd-3-clause"},
            "creators": [
                {"name": "Martin, Alice", "orcid": "0000-0002-8778-9328", "affiliation": "MPIK"},
                {"name": "The agnpy team"},
            ],
            "contributors": [{"name": "Keller, Bruno", "type": "ContactPerson"}],
            "keywords": ["AGN", "blazars"],
            "related_identifiers": [
                {
                    "identifier": "https://github.com/cosimoNigro/agnpy",
                    "relation": "isSupplementTo",
                },
                {"identifier": "https://agnpy.readthedocs.io", "relation": "isDocumentedBy"},
            ],
        },
    }
    doc = codemeta_from_zenodo(hit)
    assert doc["@context"] == "https://w3id.org/codemeta/3.0"
    assert doc["name"] == "agnpy"
    assert doc["description"] == "Modelling jetted AGN & blazars.\nSecond."
    assert doc["softwareVersion"] == "v0.4.0"
    assert doc["license"] == "https://spdx.org/licenses/BSD-3-Clause"
    assert doc["author"][0] == {
        "@type": "Person",
        "givenName": "Alice",
        "familyName": "Martin",
        "@id": "https://orcid.org/0000-0002-8778-9328",
        "affiliation": {"@type": "Organization", "name": "MPIK"},
    }
    assert doc["maintainer"][0]["familyName"] == "Keller"
    assert doc["codeRepository"] == "https://github.com/cosimoNigro/agnpy"
    assert doc["readme"] == "https://agnpy.readthedocs.io"
    assert doc["identifier"] == "https://doi.org/10.5281/zenodo.7"
    assert html_to_text("a<br/>b") == "a\nb"
