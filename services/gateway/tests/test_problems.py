"""Every error path answers application/problem+json, and never leaks internals."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from vre_common.testing import TestIssuer, app_client, free_port
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app

PROBLEM = "application/problem+json"


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(ge=0)


def _service() -> FastAPI:
    from vre_common.app import create_base_app

    app = create_base_app(service="demo", title="demo", description="demo")

    @app.post("/things")
    async def make(thing: Thing) -> Thing:
        return thing

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    issuer = TestIssuer()
    app = create_app(
        GatewaySettings(), validator=issuer.validator(), service_apps={"demo": _service()}
    )
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


async def test_malformed_json_is_422_problem(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/demo/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM


async def test_unexpected_exception_is_500_without_internals() -> None:
    issuer = TestIssuer()
    app = create_app(
        GatewaySettings(), validator=issuer.validator(), service_apps={"demo": _service()}
    )
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
        ready = await c.get("/readyz")
        assert ready.status_code == 503
        down = {d["name"] for d in ready.json()["dependencies"] if not d["up"]}
        assert {"datalake", "workflows"} <= down
