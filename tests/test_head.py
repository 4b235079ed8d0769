"""HEAD wherever GET is (issue 19): every GET operation of the merged OpenAPI document, and the
pages (landing page, dashboard, guides, problem pages, /docs, /openapi.json, health), answer
HEAD with the GET's status and headers and no body — on the running VRE with a real Rucio."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.zenodo.tests.support.standin import served_standin
from tests.support.running_vre import ZENODO_TOKENS, running_vre
from vre_common.testing import TestIssuer
from vre_rucio_local import LocalRucio

pytestmark = pytest.mark.slow  # the whole VRE with a real Rucio (about a minute here)

# Headers that differ between two answers by design.
PER_ANSWER = frozenset({"date", "x-request-id"})
FILE = "head/hello.txt"


@pytest.fixture(scope="module")
def vre(
    rucio_server: LocalRucio, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, TestIssuer]]:
    folder = tmp_path_factory.mktemp("vre-head")
    with (
        served_standin(folder / "zenodo", ZENODO_TOKENS) as zenodo,
        running_vre(folder / "vre", rucio_server, zenodo) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def http(vre: tuple[str, TestIssuer]) -> Iterator[httpx.Client]:
    url, issuer = vre
    with httpx.Client(base_url=url, timeout=60, headers=issuer.headers("alice")) as client:
        yield client


@pytest.fixture(scope="module")
def known(http: httpx.Client) -> dict[str, str]:
    """Real values for path parameters: alice's scope with one file, a project of hers."""
    scope = http.get("/datalake/scopes/mine").json()["scope"]
    up = http.put(f"/datalake/files/{scope}/{FILE}", content=b"hello\n")
    assert up.status_code in (200, 201), up.text
    made = http.post("/projects", json={"name": "HEAD demo", "slug": "head-demo"})
    assert made.status_code in (201, 409), made.text
    return {
        "scope": scope,
        "name": FILE,
        "slug": "head-demo",
        "rse": "VRE-DISK-1",
        "entity": f"did:{scope}:{FILE}",
        "q": "hello",
    }


def _value(param: dict[str, Any], known: dict[str, str]) -> str:
    if param["name"] in known:
        return known[param["name"]]
    schema = param.get("schema", {})
    options = schema.get("anyOf", [schema])
    for option in options:
        if "enum" in option:
            return str(option["enum"][0])
        if option.get("type") == "integer":
            return str(max(1, option.get("minimum", 1)))
    return "x"


def _get_operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, item["get"]) for path, item in doc["paths"].items() if "get" in item]


def _comparable(response: httpx.Response) -> dict[str, str]:
    volatile = PER_ANSWER
    if response.url.path.endswith("/readyz"):  # reasons and timings differ from call to call
        volatile = volatile | {"content-length"}
    return {k: v for k, v in response.headers.items() if k not in volatile}


def _assert_head_like_get(http: httpx.Client, url: str) -> int:
    get = http.get(url)
    head = http.head(url)
    assert head.status_code == get.status_code, (url, get.status_code, head.status_code)
    assert head.content == b"", url
    assert _comparable(head) == _comparable(get), url
    return get.status_code


def test_every_get_operation_answers_head(http: httpx.Client, known: dict[str, str]) -> None:
    doc = http.get("/openapi.json").json()
    operations = _get_operations(doc)
    assert len(operations) > 40  # the whole merged document, every service
    statuses: dict[str, int] = {}
    for path, op in operations:
        url = path
        params: dict[str, str] = {}
        for param in op.get("parameters", []):
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", _value(param, known))
            elif param["in"] == "query" and param.get("required"):
                params[param["name"]] = _value(param, known)
        if params:
            url += "?" + str(httpx.QueryParams(params))
        statuses[op["operationId"]] = _assert_head_like_get(http, url)
    # Real answers among them, not only 404s: reads of what exists.
    for operation in ("datalake_get_did", "datalake_download_file", "get_project", "me"):
        assert statuses[operation] == 200, (operation, statuses[operation])


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/app",
        "/guide/operations",
        "/healthz",
        "/readyz",
        "/docs",
        "/openapi.json",
        "/problems",
        "/problems/not-found",
        "/datalake/healthz",
        "/catalogue/readyz",
    ],
)
def test_pages_answer_head(http: httpx.Client, path: str) -> None:
    assert _assert_head_like_get(http, path) == 200


def test_head_of_a_download_has_its_length_and_no_bytes(
    http: httpx.Client, known: dict[str, str]
) -> None:
    head = http.head(f"/datalake/files/{known['scope']}/{FILE}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(b"hello\n"))
    assert head.content == b""
    assert "HEAD" in http.put("/healthz").headers["allow"]
