"""Every error path answers application/problem+json, and never leaks internals."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import Field

from vre_common.errors import set_problem_base
from vre_common.link import link_service
from vre_common.testing import TestIssuer, app_client, free_port
from vre_common.types import NonNegativeInt, RequestModel
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app

PROBLEM = "application/problem+json"


class Thing(RequestModel):
    name: str = Field(min_length=1)
    size: NonNegativeInt


def _service() -> FastAPI:
    from vre_common.app import create_base_app

    app = create_base_app(service="demo", title="demo", description="demo")

    writing = APIRouter()

    @writing.post("/things")
    async def make(thing: Thing) -> Thing:
        return thing

    app.include_router(writing)

    listing = APIRouter()  # an included router: FastAPI keeps its routes apart

    @listing.get("/things")
    async def things() -> list[Thing]:
        return [Thing(name="a", size=1)]

    app.include_router(listing)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    return app


def _gateway(settings: GatewaySettings, issuer: TestIssuer) -> FastAPI:
    """The gateway with the demo service mounted in its process."""
    factory = Factory(settings, validator=issuer.validator())
    demo = link_service(_service(), factory.link)
    return create_app(settings, factory=factory, service_apps={"demo": demo})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    issuer = TestIssuer()
    app = _gateway(GatewaySettings(), issuer)
    async with app_client(app, headers=issuer.headers("alice")) as c:
        yield c


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 404
    assert body["instance"] == "/no/such/thing"
    assert body["request_id"] == r.headers["x-request-id"]


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    r = await client.delete("/me")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert "DELETE" in r.json()["detail"]


async def test_invalid_body_is_422_with_every_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/demo/things", json={"name": "", "size": -1})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    locs = {tuple(e["loc"]) for e in r.json()["errors"]}
    assert locs == {("body", "name"), ("body", "size")}


async def test_malformed_json_is_400_with_line_column_and_reason(
    client: httpx.AsyncClient,
) -> None:
    body = b'{\n  "name": "x",\n  "size": 3,\n}\n'  # a trailing comma on line 3
    r = await client.post(
        "/demo/things", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["type"].endswith("/problems/malformed-body")
    assert (problem["line"], problem["column"]) == (4, 1)
    assert problem["reason"] == "Expecting property name enclosed in double quotes"
    assert "line 4, column 1" in problem["detail"]
    r = await client.post(
        "/demo/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert (r.json()["line"], r.json()["column"]) == (1, 2)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/yaml", b"name: x\nsize: 1\n"),
        ("multipart/form-data; boundary=b", b"--b\r\n\r\nx\r\n--b--\r\n"),
        ("text/plain", b'{"name": "x", "size": 1}'),
    ],
)
async def test_other_media_types_on_a_json_route_are_415_with_the_accepted_ones(
    client: httpx.AsyncClient, content_type: str, body: bytes
) -> None:
    r = await client.post("/demo/things", content=body, headers={"content-type": content_type})
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["accept-post"] == "application/json"
    problem = r.json()
    assert problem["accepted"] == ["application/json"]
    assert content_type.split(";", maxsplit=1)[0] in problem["detail"]
    # +json suffixes are JSON
    ok = await client.post(
        "/demo/things",
        content=b'{"name": "x", "size": 1}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert ok.status_code == 200, ok.text


async def test_schema_messages_speak_of_characters_and_objects(client: httpx.AsyncClient) -> None:
    r = await client.post("/demo/things", json={"name": "", "size": True, "colour": "red"})
    assert r.status_code == 422
    by_field = {e["loc"][-1]: e["msg"] for e in r.json()["errors"]}
    assert by_field == {
        "name": "should have at least 1 character (0 given)",
        "size": "expected an integer, got a boolean",
        "colour": "unknown field: check its spelling against the operation's schema",
    }
    r = await client.post("/demo/things", json={"name": "x", "size": 1.5})
    assert r.json()["errors"][0]["msg"] == "expected an integer, got a number"
    r = await client.post("/demo/things", json=["not", "an", "object"])
    assert r.json()["errors"][0]["msg"] == "expected a JSON object, got an array"


async def test_405_allow_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    """Two routes share /demo/things (POST, and GET in another router): Allow names both."""
    r = await client.put("/demo/things")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, POST"
    assert "PUT is not allowed" in r.json()["detail"]


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/demo/things", "/openapi.json", "/docs", "/demo/healthz"):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        same = {k: v for k, v in get.headers.items() if k not in ("x-request-id", "date")}
        assert {k: v for k, v in head.headers.items() if k in same} == same, path


async def test_problem_types_point_at_the_gateway_or_the_configured_base(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/no/such/thing")
    assert r.json()["type"] == "http://testserver/problems/not-found"
    r = await client.get("/no/such/thing", headers={"host": "vre.example.net:8443"})
    assert r.json()["type"] == "http://vre.example.net:8443/problems/not-found"
    issuer = TestIssuer()
    settings = GatewaySettings(problem_base_uri="https://docs.example.org/vre/problems")
    app = _gateway(settings, issuer)
    try:
        async with app_client(app) as c:
            r = await c.get("/me")
            assert r.json()["type"] == "https://docs.example.org/vre/problems/invalid-token"
    finally:
        set_problem_base(None)


async def test_unexpected_exception_is_500_without_internals() -> None:
    issuer = TestIssuer()
    app = _gateway(GatewaySettings(), issuer)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/demo/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM
    assert "secret" not in r.text
    assert "Traceback" not in r.text
    assert r.json()["request_id"]


async def test_request_id_is_accepted_and_returned(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith tab"})
    assert r.headers["x-request-id"] != "bad id\twith tab"


async def test_body_limit_gives_413(client: httpx.AsyncClient) -> None:
    app_limit = GatewaySettings().max_body_bytes
    r = await client.post(
        "/demo/things", content=b"x" * (app_limit + 1), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


async def test_rate_limit_gives_429_with_retry_after() -> None:
    issuer = TestIssuer()
    settings = GatewaySettings(rate_limit={"requests_per_second": 1, "burst": 3})
    app = create_app(settings, validator=issuer.validator())
    async with app_client(app, headers=issuer.headers("bob")) as c:
        statuses = [(await c.get("/me")).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        r = await c.get("/me")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["content-type"] == PROBLEM
        # another caller is not affected
        other = await c.get("/me", headers=issuer.headers("carol"))
        assert other.status_code == 200


# ------------------------------------------------------------------ distributed-mode failures


@pytest.fixture
def hanging_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    for c in conns:
        c.close()
    sock.close()


async def test_refusing_backend_gives_503(hanging_server: int) -> None:
    issuer = TestIssuer()
    dead = free_port()  # nothing listens here
    settings = GatewaySettings(
        mode="distributed",
        service_urls={
            "datalake": f"http://127.0.0.1:{dead}",
            "workflows": f"http://127.0.0.1:{hanging_server}",
        },
        proxy_read_timeout=0.5,
    )
    app = create_app(settings, validator=issuer.validator())
    async with app_client(app, headers=issuer.headers()) as c:
        r = await c.get("/datalake/rses")
        assert r.status_code == 503
        assert r.headers["content-type"] == PROBLEM
        assert "Retry-After" in r.headers
        assert "datalake" in r.json()["detail"]
        started = asyncio.get_running_loop().time()
        r = await c.get("/workflows/runs")
        assert r.status_code == 504
        assert r.headers["content-type"] == PROBLEM
        assert asyncio.get_running_loop().time() - started < 5
        # services down are reported, but the gateway itself still serves (it answered the
        # 503/504 above): its readiness must not take it out of the load balancer
        ready = await c.get("/readyz")
        assert ready.status_code == 200
        down = {d["name"]: d for d in ready.json()["dependencies"] if not d["up"]}
        assert {"datalake", "workflows"} <= set(down)
        assert all(down[name]["optional"] and down[name]["reason"] for name in down)
