"""The HTTP scope provisioner: what it sends to the datalake and how it reads the answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from vre_common.app import create_base_app
from vre_common.errors import ConflictError, ForbiddenError
from vre_gateway.backends.scopes import HttpScopeProvisioner


def _datalake(seen: list[dict[str, Any]]) -> FastAPI:
    """The two datalake routes the provisioner uses, in the datalake's documented shapes."""
    app = create_base_app(service="dl", title="dl", description="dl")

    @app.post("/scopes", status_code=201)
    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        if body["scope"] == "proj.exists":
            raise ConflictError("scope exists")
        if body["scope"] == "proj.refused":
            raise ForbiddenError("no")
        return JSONResponse({"scope": body["scope"]}, status_code=201)

    @app.get("/dids/{scope}")
    async def dids(scope: str) -> StreamingResponse:
        if scope == "proj.missing":
            from vre_common.errors import NotFoundError

            raise NotFoundError("no scope")

        async def lines() -> AsyncIterator[bytes]:
            if scope == "proj.full":
                for i in range(1000):
                    yield (
                        json.dumps({"scope": scope, "name": f"f{i}", "type": "file"}) + "\n"
                    ).encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


async def test_create_and_has_data() -> None:
    seen: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=_datalake(seen))
    async with httpx.AsyncClient(transport=transport) as http:
        provisioner = HttpScopeProvisioner("http://dl", http=http)
        await provisioner.create_scope("proj.new", project="new", quota_bytes=10, token="tok")
        await provisioner.create_scope(
            "proj.exists", project="exists", quota_bytes=None, token="tok"
        )
        with pytest.raises(ForbiddenError):
            await provisioner.create_scope("proj.refused", project="r", quota_bytes=1, token="tok")
        assert await provisioner.scope_has_data("proj.full", token="tok") is True
        assert await provisioner.scope_has_data("proj.empty", token="tok") is False
        assert await provisioner.scope_has_data("proj.missing", token="tok") is False

        async def service_token() -> str:
            return "svc"

        as_gateway = HttpScopeProvisioner("http://dl", http=http, service_token=service_token)
        await as_gateway.create_scope("proj.svc", project="svc", quota_bytes=None, token="tok")
    assert seen[0] == {
        "body": {"scope": "proj.new", "project": "new", "quota_bytes": 10},
        "auth": "Bearer tok",
    }
    assert seen[-1]["auth"] == "Bearer svc"


async def test_provisioner_token_from_settings(tmp_path: Path) -> None:
    from vre_gateway.config import ProjectSettings
    from vre_gateway.factory import provisioner_token

    assert provisioner_token(ProjectSettings()) is None
    static = provisioner_token(ProjectSettings.model_validate({"provisioner_token": "svc"}))
    assert static is not None
    assert await static() == "svc"
    path = tmp_path / "token"
    path.write_text("first\n")
    rotated = provisioner_token(
        ProjectSettings.model_validate({"provisioner_token": "svc", "provisioner_token_file": path})
    )
    assert rotated is not None
    assert await rotated() == "first"
    path.write_text("second\n")
    assert await rotated() == "second"  # read at each use: a rotated token is picked up
