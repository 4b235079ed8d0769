"""Distributed mode over real HTTP: small bodies buffered, large ones streamed both ways."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from vre_common.app import create_base_app
from vre_common.deps import CurrentUser
from vre_common.link import GatewayLink, attach_link
from vre_common.testing import ServerThread, TestIssuer
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app

ISSUER = TestIssuer()
BIG = 8 << 20  # over the 1 MiB buffering threshold


def _upstream() -> FastAPI:
    app = create_base_app(service="demo", title="demo", description="demo")
    attach_link(app, GatewayLink(validator=ISSUER.validator()))

    @app.get("/echo")
    async def echo(request: Request, user: CurrentUser) -> dict[str, str | None]:
        return {
            "user": user.username,
            "request_id": request.headers.get("x-request-id"),
            "query": request.url.query,
        }

    @app.get("/cookie")
    async def cookie(request: Request) -> JSONResponse:
        """Sets a session cookie on the first caller, and tells what cookie came in."""
        response = JSONResponse({"cookie": request.headers.get("cookie")})
        if request.query_params.get("set"):
            response.set_cookie("vre_session", request.query_params["set"])
        return response

    @app.put("/sink")
    async def sink(request: Request) -> dict[str, object]:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return {"size": size, "sha256": digest.hexdigest()}

    @app.get("/source")
    async def source() -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(BIG // 65536):
                yield bytes([i % 251]) * 65536

        return StreamingResponse(gen(), media_type="application/octet-stream")

    return app


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with ServerThread(_upstream()) as upstream:
        settings = GatewaySettings(mode="distributed", service_urls={"demo": upstream.url})
        with ServerThread(create_app(settings, validator=ISSUER.validator())) as gw:
            yield gw.url


async def test_small_request_is_forwarded_with_identity_and_request_id(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        r = await client.get(
            "/demo/echo?x=1&y=%2F", headers={**ISSUER.headers("bob"), "X-Request-ID": "rid-42"}
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"user": "bob", "request_id": "rid-42", "query": "x=1&y=%2F"}
    assert r.headers["x-request-id"] == "rid-42"


async def test_upstream_rejects_missing_token(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as client:
        r = await client.get("/demo/echo")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


async def test_large_upload_and_download_stream_through(gateway: str) -> None:
    payload = bytes(range(256)) * (BIG // 256)

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 1 << 20):
            yield payload[i : i + (1 << 20)]

    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.put("/demo/sink", content=body())  # chunked, no length
        assert r.status_code == 200, r.text
        assert r.json() == {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        digest = hashlib.sha256()
        size = 0
        async with client.stream("GET", "/demo/source") as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
                size += len(chunk)
        assert size == BIG


@pytest.fixture(scope="module")
def gateway_by_name() -> Iterator[str]:
    """The gateway reaching its upstream by a host name (as in a cluster), not an address:
    an HTTP client's cookie jar keeps cookies of named hosts only."""
    with ServerThread(_upstream()) as upstream:
        url = upstream.url.replace("127.0.0.1", "localhost")
        settings = GatewaySettings(mode="distributed", service_urls={"demo": url})
        with ServerThread(create_app(settings, validator=ISSUER.validator())) as gw:
            yield gw.url


async def test_one_callers_cookie_never_reaches_another(gateway_by_name: str) -> None:
    """The proxy's pooled client keeps no cookies: a session cookie an upstream sets on one
    caller's answer goes to that caller only, and comes back only when that caller sends it."""
    gateway = gateway_by_name
    async with httpx.AsyncClient(base_url=gateway) as alice:
        first = await alice.get("/demo/cookie?set=alice-session")
    assert first.cookies.get("vre_session") == "alice-session"
    async with httpx.AsyncClient(base_url=gateway) as bob:
        other = await bob.get("/demo/cookie")
    assert other.json() == {"cookie": None}
    async with httpx.AsyncClient(base_url=gateway, cookies={"vre_session": "alice"}) as again:
        mine = await again.get("/demo/cookie")
    assert mine.json() == {"cookie": "vre_session=alice"}
