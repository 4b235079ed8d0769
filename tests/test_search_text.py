"""Search with any text (issue 19): spaces, non-ASCII, quotes and wildcards reach every source
of the running VRE (real Rucio, every service) without making the answer partial; only a
source that really fails does."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.zenodo.tests.support.standin import served_standin
from tests.support.running_vre import ALL_SEARCH_SOURCES, ZENODO_TOKENS, running_vre
from vre_common.testing import TestIssuer
from vre_rucio_local import LocalRucio

pytestmark = pytest.mark.slow  # the whole VRE with a real Rucio

FILE = "limits-2024.csv"


@pytest.fixture(scope="module")
def alice(
    rucio_server: LocalRucio, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("vre-search")
    with (
        served_standin(folder / "zenodo", ZENODO_TOKENS) as zenodo,
        running_vre(
            folder / "vre",
            rucio_server,
            zenodo,
            TestIssuer(),
            search={"sources": ALL_SEARCH_SOURCES, "timeout_seconds": 20},
        ) as (url, issuer),
        httpx.Client(base_url=url, timeout=60, headers=issuer.headers("alice")) as http,
    ):
        made = http.post(
            "/projects",
            json={"name": "Čerenkov limits", "slug": "cherenkov", "description": "Ölçüm 2024"},
        )
        assert made.status_code == 201, made.text
        up = http.put(f"/datalake/files/proj.cherenkov/{FILE}", content=b"mass,limit\n1,2\n")
        assert up.status_code == 201, up.text
        yield http


def _search(http: httpx.Client, q: str) -> dict[str, object]:
    response = http.get("/search", params={"q": q})
    assert response.status_code == 200, (q, response.text)
    body: dict[str, object] = response.json()
    return body


def _ids(body: dict[str, object]) -> set[str]:
    items = body["items"]
    assert isinstance(items, list)
    return {f"{i['type']}:{i['id']}" for i in items}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("limits 2024", {"did:proj.cherenkov:limits-2024.csv", "project:cherenkov"}),
        ("2024 limits", {"did:proj.cherenkov:limits-2024.csv", "project:cherenkov"}),
        ('"limits-2024"', {"did:proj.cherenkov:limits-2024.csv"}),
        ("limits*", {"did:proj.cherenkov:limits-2024.csv", "project:cherenkov"}),
        ("LIMITS-2024.CSV", {"did:proj.cherenkov:limits-2024.csv"}),
        ("Čerenkov", {"project:cherenkov"}),
        ("Ölçüm", {"project:cherenkov"}),
        ("limits type=file", {"did:proj.cherenkov:limits-2024.csv"}),
    ],
)
def test_text_finds_what_it_names_in_every_source_it_can(
    alice: httpx.Client, q: str, expected: set[str]
) -> None:
    body = _search(alice, q)
    assert body["partial"] is False, body
    sources = body["sources"]
    assert isinstance(sources, dict)
    assert set(sources) == set(ALL_SEARCH_SOURCES)
    assert set(sources.values()) <= {"ok", "skipped"}, sources
    assert sources["datalake"] == "ok"
    assert expected <= _ids(body), (q, _ids(body))


@pytest.mark.parametrize(
    "q", ["日本語", "«»", "d'Artagnan & Co.", "%_\\", "a\u200bb", "💡 idea", "*", "../../etc"]
)
def test_any_text_is_answered_without_a_failed_source(alice: httpx.Client, q: str) -> None:
    body = _search(alice, q)
    assert body["partial"] is False, body
    sources = body["sources"]
    assert isinstance(sources, dict)
    assert set(sources.values()) <= {"ok", "skipped"}, (q, sources)


def test_text_no_name_can_hold_skips_the_datalake_only(alice: httpx.Client) -> None:
    sources = _search(alice, "日本語")["sources"]
    assert isinstance(sources, dict)
    assert sources["datalake"] == "skipped"
    assert sources["projects"] == sources["catalogue"] == sources["workflows"] == "ok"
