"""A WebDAV/HTTPS storage element (WsgiDAV under cheroot, TLS, bearer token) through the API."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.datalake.tests.conftest import settings_params
from services.datalake.tests.datalake_support import make_settings
from services.datalake.tests.datalake_support.tls import self_signed
from vre_common.testing import TestIssuer, app_client, free_port
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio

SERVER = Path(__file__).with_name("datalake_support") / "webdav_server.py"
RSE = "VRE-DAV-1"
TOKEN = "storage-token-for-tests"


@dataclass
class Dav:
    url: str
    root: Path
    cert: Path


@pytest.fixture(scope="module")
def dav(rucio_server: LocalRucio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dav]:
    """A running WebDAV server registered in Rucio as ``VRE-DAV-1``."""
    base = tmp_path_factory.mktemp("dav")
    root = base / "root"
    (root / "rucio").mkdir(parents=True)
    cert, key = self_signed(base)
    port = free_port()
    config = {"root": str(root), "port": port, "cert": str(cert), "key": str(key), "token": TOKEN}
    log = base / "dav.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), json.dumps(config)], stdout=handle, stderr=handle
        )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            try:
                probe = httpx.request(
                    "PROPFIND",
                    url + "/rucio/",
                    headers={"Authorization": f"Bearer {TOKEN}", "Depth": "0"},
                    verify=ssl.create_default_context(cafile=str(cert)),
                )
                if probe.status_code == 207:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        rucio_server.add_webdav_rse(RSE, url + "/rucio/")
        yield Dav(url=url, root=root, cert=cert)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def dav_client(
    dav: Dav, rucio_server: LocalRucio, issuer: TestIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        **settings_params(rucio_server, issuer, webdav_token=TOKEN, webdav_verify=str(dav.cert))
    )
    async with app_client(create_app(settings, validator=issuer.validator()), timeout=60) as http:
        yield http


async def test_webdav_upload_download_round_trip(
    dav: Dav, dav_client: httpx.AsyncClient, issuer: TestIssuer, uid: str
) -> None:
    headers = issuer.headers(f"dav{uid[:6]}")  # a new user: limits on every RSE, DAV included
    scope = (await dav_client.get("/scopes/mine", headers=headers)).json()["scope"]
    body = os.urandom(5 * 1024 * 1024 + 17)
    put = await dav_client.put(
        f"/files/{scope}/{uid}/dav.bin", content=body, params={"rse": RSE}, headers=headers
    )
    assert put.status_code == 201, put.text
    assert put.json()["pfn"].startswith(dav.url + "/rucio/")
    assert put.json()["md5"] == hashlib.md5(body).hexdigest()
    stored = [p for p in dav.root.rglob("*") if p.is_file() and uid in str(p)]
    assert len(stored) == 1, stored  # moved into place, no temporary name left
    assert stored[0].read_bytes() == body

    got = await dav_client.get(f"/files/{scope}/{uid}/dav.bin", headers=headers)
    assert got.status_code == 200, got.text
    assert got.headers["x-replica-rse"] == RSE
    assert got.content == body
    part = await dav_client.get(
        f"/files/{scope}/{uid}/dav.bin", headers={**headers, "Range": "bytes=1000-1999"}
    )
    assert part.status_code == 206
    assert part.content == body[1000:2000]
    replicas = await dav_client.get(f"/dids/{scope}/{uid}/dav.bin/replicas", headers=headers)
    assert replicas.json()[0]["replicas"][0]["url"] == put.json()["pfn"]


async def test_webdav_refusal_registers_nothing(
    dav: Dav, rucio_server: LocalRucio, issuer: TestIssuer, uid: str
) -> None:
    settings = make_settings(
        **settings_params(rucio_server, issuer, webdav_token="wrong", webdav_verify=str(dav.cert))
    )
    headers = issuer.headers(f"dav{uid[:6]}")
    async with app_client(create_app(settings, validator=issuer.validator())) as http:
        scope = (await http.get("/scopes/mine", headers=headers)).json()["scope"]
        put = await http.put(
            f"/files/{scope}/{uid}.bin", content=b"x" * 1000, params={"rse": RSE}, headers=headers
        )
        assert put.status_code == 502, put.text
        assert put.json()["type"].endswith("/storage-error")
        missing = await http.get(f"/dids/{scope}/{uid}.bin", headers=headers)
        assert missing.status_code == 404
    assert not [p for p in dav.root.rglob("*") if uid in str(p)]
