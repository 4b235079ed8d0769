"""Registering codemeta.json documents: validation reports every problem at once."""

from __future__ import annotations

import copy

import httpx

from services.catalogue.tests.support.helpers import Users, codemeta


async def test_register_codemeta3_entry(client: httpx.AsyncClient, as_user: Users) -> None:
    response = await client.post(
        "/software", json=codemeta("gammapy_codemeta3.json"), headers=as_user("alice")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    assert body["version"] == "1.2"
    entry = body["software"]
    assert entry["name"] == "gammapy"
    assert entry["registrant"] == "alice"
    assert entry["licenses"] == ["BSD-3-Clause"]
    assert entry["programming_languages"] == ["Python"]
    assert entry["dois"] == ["10.5281/zenodo.10726484"]
    assert [a["orcid"] for a in entry["authors"]] == [
        "0000-0002-8778-9328",
        "0000-0003-7921-7423",
        None,
    ]
    # the 3.0 Role resolves to the person it points at
    assert entry["maintainers"][0]["family_name"] == "Martin"
    assert entry["authors"][0]["affiliation"] == "Max Planck Institute for Nuclear Physics"
    # what the OSSR recommends and gammapy's codemeta.json lacks; "1.2" is no semantic version
    assert {(w["pointer"], w["type"]) for w in body["warnings"]} == {
        ("/memoryRequirements", "recommended"),
        ("/processorRequirements", "recommended"),
        ("/storageRequirements", "recommended"),
        ("/softwareVersion", "version_format"),
    }
    assert response.headers["location"].endswith(f"software/{entry['id']}")


async def test_register_codemeta2_entry_with_warnings(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    document = codemeta("ctapipe_codemeta2.json")
    del document["funding"], document["copyrightHolder"]
    response = await client.post("/software", json=document, headers=as_user("bob"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert {w["pointer"] for w in body["warnings"]} == {
        "/funding",
        "/copyrightHolder",
        "/memoryRequirements",
        "/processorRequirements",
        "/storageRequirements",
    }
    assert all(w["type"] == "recommended" for w in body["warnings"])
    assert all(w["fix"] for w in body["warnings"])
    assert body["software"]["dois"] == ["10.5281/zenodo.8337720"]
    assert body["software"]["maintainers"][0]["email"] == "emma.schmidt@example.org"


async def test_every_problem_reported_at_once(client: httpx.AsyncClient, as_user: Users) -> None:
    response = await client.post(
        "/software", json=codemeta("broken_codemeta.json"), headers=as_user("alice")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/invalid-codemeta")
    found = {(".".join(str(p) for p in e["loc"]), e["type"]) for e in problem["errors"]}
    assert found == {
        ("description", "missing"),
        ("maintainer", "missing"),
        ("version", "version_conflict"),
        ("datePublished", "date_invalid"),
        ("license", "license_unknown"),
        ("codeRepository", "url_invalid"),
        ("readme", "url_invalid"),
        ("issueTracker", "url_invalid"),
        ("author.0.@id", "orcid_invalid"),
        ("author.1.@id", "orcid_invalid"),
        ("author.2", "person_invalid"),
    }
    checksum = next(e for e in problem["errors"] if e["loc"] == ["author", 0, "@id"])
    assert "check digit" in checksum["msg"]
    assert checksum["pointer"] == "/author/0/@id"
    # each problem says what to write instead
    assert all(e["fix"] for e in problem["errors"]), problem["errors"]
    by_pointer = {e["pointer"]: e for e in problem["errors"]}
    assert "'0.10.4'" in by_pointer["/version"]["msg"]
    assert "'0.10.5'" in by_pointer["/version"]["msg"]
    assert by_pointer["/codeRepository"]["fix"] == (
        'write "https://github.com/cta-observatory/cta-lstchain"'
    )
    assert {tuple(w["loc"]) for w in problem["warnings"]} >= {("funding",), ("identifier",)}
    listing = await client.get("/software/search")
    assert listing.json()["total"] == 0  # nothing stored


async def test_each_required_key_reported(client: httpx.AsyncClient, as_user: Users) -> None:
    response = await client.post(
        "/software",
        json={"@context": "https://w3id.org/codemeta/3.0", "@type": "SoftwareSourceCode"},
        headers=as_user("alice"),
    )
    assert response.status_code == 422
    missing = {e["loc"][0] for e in response.json()["errors"] if e["type"] == "missing"}
    assert missing == {
        "name",
        "description",
        "softwareVersion",
        "author",
        "datePublished",
        "license",
        "maintainer",
        "readme",
    }


async def test_version_instead_of_software_version(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    document = codemeta("eossr_codemeta2.json")
    document["version"] = document.pop("softwareVersion")
    response = await client.post("/software", json=document, headers=as_user("alice"))
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["loc"] == ["softwareVersion"]
    assert error["pointer"] == "/softwareVersion"
    assert "does not read 'version'" in error["msg"]
    assert error["fix"] == f'add "softwareVersion": "{document["version"]}"'


async def test_contexts_and_licenses(client: httpx.AsyncClient, as_user: Users) -> None:
    document = codemeta("eossr_codemeta2.json")
    unknown = copy.deepcopy(document)
    unknown["@context"] = "https://schema.org"
    response = await client.post("/software", json=unknown, headers=as_user("alice"))
    assert [e["type"] for e in response.json()["errors"]] == ["context_unknown"]

    listed = copy.deepcopy(document)
    listed["@context"] = ["https://doi.org/10.5063/schema/codemeta-2.0", {"ex": "https://ex.org/"}]
    listed["license"] = ["mit", "https://spdx.org/licenses/Apache-2.0.html", "GPL-3.0-or-later"]
    response = await client.post("/software", json=listed, headers=as_user("alice"))
    assert response.status_code == 201, response.text
    assert response.json()["software"]["licenses"] == ["MIT", "Apache-2.0", "GPL-3.0-or-later"]

    custom = copy.deepcopy(document)
    custom["softwareVersion"] = "9"
    custom["license"] = ["LicenseRef-Proprietary", "https://spdx.org/licenses/NotALicense-1.0"]
    response = await client.post("/software", json=custom, headers=as_user("alice"))
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["license", 0], ["license", 1]]


async def test_new_release_of_an_entry(client: httpx.AsyncClient, as_user: Users) -> None:
    first = codemeta("ctapipe_codemeta2.json")
    created = await client.post("/software", json=first, headers=as_user("alice"))
    entry_id = created.json()["software"]["id"]
    second = copy.deepcopy(first)
    second.update(
        softwareVersion="0.21.0",
        datePublished="2024-04-02",
        identifier="10.5281/zenodo.10932101",
        keywords=["CTA", "gamma-ray astronomy", "DL3"],
    )
    response = await client.post("/software", json=second, headers=as_user("alice"))
    assert response.status_code == 201
    assert response.json()["created"] is False
    entry = response.json()["software"]
    assert entry["id"] == entry_id
    assert entry["latest_version"] == "0.21.0"
    assert entry["versions"] == ["0.21.0", "0.20.0"]
    assert set(entry["dois"]) == {"10.5281/zenodo.8337720", "10.5281/zenodo.10932101"}

    again = await client.post("/software", json=second, headers=as_user("alice"))
    assert again.status_code == 409
    assert again.json()["type"].endswith("/version-exists")

    versions = await client.get(f"/software/{entry_id}/versions")
    assert [v["version"] for v in versions.json()["items"]] == ["0.21.0", "0.20.0"]
    one = await client.get(f"/software/{entry_id}/versions/0.20.0")
    assert one.json()["dois"] == ["10.5281/zenodo.8337720"]
    assert one.json()["codemeta_version"] == "2.0"


async def test_body_must_be_an_object(client: httpx.AsyncClient, as_user: Users) -> None:
    response = await client.post(
        "/software", json=["not", "an", "object"], headers=as_user("alice")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_writes_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/software", json=codemeta("eossr_codemeta2.json"))
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
