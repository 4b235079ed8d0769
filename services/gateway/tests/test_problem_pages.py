"""Every problem type URI resolves: the gateway serves a page per type, docs/problems.md has
an entry for each (generated; this test fails when it drifts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from vre_common.testing import TestIssuer, app_client
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app
from vre_gateway.problem_types import _error_classes, catalog, render

DOC = Path(__file__).resolve().parents[3] / "docs" / "problems.md"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    issuer = TestIssuer()
    async with app_client(create_app(GatewaySettings(), validator=issuer.validator())) as c:
        yield c


def test_docs_problems_md_is_current() -> None:
    assert DOC.read_text() == render(), "docs/problems.md is out of date: run make docs"


def test_every_error_class_has_an_entry() -> None:
    classes = _error_classes()
    # The services' classes are collected, not just the common ones.
    assert {c.__module__.split(".")[0] for c in classes} >= {
        "vre_common",
        "vre_datalake",
        "vre_workflows",
        "vre_catalogue",
        "vre_zenodo",
        "vre_ivoa",
        "vre_gateway",
    }
    text = DOC.read_text()
    for cls in classes:
        entry = catalog()[cls.slug]
        assert f"{cls.__module__}.{cls.__qualname__}" in entry.raised_by
        assert f"\n## {cls.slug}\n" in text
        assert entry.meaning
        assert entry.advice


async def test_every_type_uri_of_an_answer_resolves_to_its_page(
    client: httpx.AsyncClient,
) -> None:
    problems = [
        await client.get("/no/such/route"),  # HTTP-level: not-found
        await client.delete("/me"),  # method-not-allowed
        await client.get("/me"),  # a VreError: invalid-token
        await client.post("/projects", content=b"{", headers={"content-type": "application/json"}),
    ]
    for answer in problems:
        uri = answer.json()["type"]
        assert uri.startswith("http://testserver/problems/"), uri
        page = await client.get(uri, headers={"accept": "text/html"})
        assert page.status_code == 200, uri
        assert page.headers["content-type"].startswith("text/html")
        assert "What it means" in page.text
        assert "What to do" in page.text
        as_json = (await client.get(uri, headers={"accept": "application/json"})).json()
        assert as_json["type"] == uri.rsplit("/", 1)[1]
        assert as_json["status"] == answer.status_code


async def test_pages_of_every_type_in_three_forms(client: httpx.AsyncClient) -> None:
    for slug, entry in catalog().items():
        html = await client.get(f"/problems/{slug}", headers={"accept": "text/html,*/*"})
        assert html.status_code == 200, slug
        assert entry.title in html.text
        md = await client.get(f"/problems/{slug}", headers={"accept": "text/markdown"})
        assert md.text == entry.markdown()
    index = await client.get("/problems", headers={"accept": "application/json"})
    assert [i["type"] for i in index.json()["items"]] == list(catalog())
    missing = await client.get("/problems/no-such-type")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
