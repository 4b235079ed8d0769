"""An app mounted in-process under another VRE app runs the shared middleware once (the outer
app's), and still answers with one request id, its own metrics labels and HEAD."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest

from vre_common.app import SHARED_MIDDLEWARE, create_base_app, share_outer_middleware
from vre_common.logging import current_request_id
from vre_common.testing import app_client


def _apps() -> tuple[FastAPI, FastAPI]:
    inner = create_base_app(service="sharedemo", title="inner", description="inner")

    @inner.get("/things/{name}")
    async def thing(name: str) -> dict[str, str | None]:
        return {"name": name, "request_id": current_request_id()}

    outer = create_base_app(service="outerdemo", title="outer", description="outer")
    outer.mount("/inner", share_outer_middleware(inner), name="inner")
    return outer, inner


async def test_mounted_app_shares_the_outer_middleware() -> None:
    outer, inner = _apps()
    assert not {m.cls for m in inner.user_middleware} & SHARED_MIDDLEWARE
    async with app_client(outer) as http:
        answer = await http.get("/inner/things/a", headers={"X-Request-ID": "abc-123"})
        assert answer.status_code == 200
        assert answer.headers.get_list("x-request-id") == ["abc-123"]
        assert answer.json() == {"name": "a", "request_id": "abc-123"}
        fresh = await http.get("/inner/things/b")
        assert len(fresh.headers.get_list("x-request-id")) == 1
        head = await http.head("/inner/things/c")
        assert head.status_code == 200
        assert head.content == b""

    lines = generate_latest().decode().splitlines()
    counted = [
        line
        for line in lines
        if line.startswith("vre_http_requests_total{") and "/things/{name}" in line
    ]
    assert counted
    assert all('service="sharedemo"' in line for line in counted)  # the mounted app's name


async def test_sharing_is_refused_once_the_app_has_served() -> None:
    app = create_base_app(service="served", title="served", description="served")
    async with app_client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
    with pytest.raises(RuntimeError, match="built already"):
        share_outer_middleware(app)
