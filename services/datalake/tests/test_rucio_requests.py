"""What an upload costs Rucio, counted on the wire (a TCP proxy between the service and the
session's real Rucio server), and that the few requests still keep every guarantee."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from services.datalake.tests.conftest import settings_params
from services.datalake.tests.datalake_support import make_settings
from services.datalake.tests.datalake_support.wire import CountingProxy
from vre_common.testing import TestIssuer, app_client
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio


@pytest.fixture
async def proxy(rucio_server: LocalRucio) -> AsyncIterator[CountingProxy]:
    counting = CountingProxy(upstream_port=rucio_server.port)
    await counting.start()
    yield counting
    await counting.stop()


@pytest.mark.parametrize(
    ("usage_cache_seconds", "expected"),
    [
        # the account's usage read within the last usage_cache_seconds is reused …
        (3600.0, ["GET /dids/{scope}/{name}", "POST /replicas", "POST /rules/"]),
        # … and read again once it is older (here: always)
        (
            0.0,
            [
                "GET /accounts/{account}/usage/local",
                "GET /dids/{scope}/{name}",
                "POST /replicas",
                "POST /rules/",
            ],
        ),
    ],
)
async def test_an_upload_of_a_new_file_costs_at_most_four_rucio_requests(
    rucio_server: LocalRucio,
    proxy: CountingProxy,
    issuer: TestIssuer,
    uid: str,
    usage_cache_seconds: float,
    expected: list[str],
) -> None:
    settings = make_settings(**settings_params(rucio_server, issuer, rucio_url=proxy.url))
    settings.rucio.usage_cache_seconds = usage_cache_seconds
    app = create_app(settings, validator=issuer.validator())
    user = f"wire{uid[:6]}"
    headers = issuer.headers(user)
    async with app_client(app, timeout=60) as client:
        me = (await client.get("/scopes/mine", headers=headers)).json()
        scope, account = me["scope"], me["account"]
        # The first upload of a service instance also logs in as the account and learns
        # the RSE's PFN layout from Rucio (lfns2pfns): not counted.
        first = await client.put(f"/files/{scope}/{uid}-first.dat", content=b"warm",
                                 headers=headers)  # fmt: skip
        assert first.status_code == 201, first.text
        assert "GET /rses/VRE-DISK-1/lfns2pfns" in proxy.requests

        data = b"one new file\n" * 80
        name = f"{uid}/new.dat"
        proxy.requests.clear()
        response = await client.put(f"/files/{scope}/{name}", content=data, headers=headers)
        sent = list(proxy.requests)
        assert response.status_code == 201, response.text

    paths = {f"/dids/{scope}/{name}": "GET /dids/{scope}/{name}"}
    named = [
        "GET /accounts/{account}/usage/local"
        if request == f"GET /accounts/{account}/usage/local"
        else paths.get(request.split(" ", 1)[1], request)
        if request.startswith("GET /dids/")
        else request
        for request in sent
    ]
    assert sorted(named) == sorted(expected), sent  # the two reads go out together
    assert len(sent) <= 4

    # … and the guarantees hold: Rucio has our checksums, the bytes at the replica's PFN,
    # the account's rule (asked of Rucio itself, with its admin token).
    token = rucio_server.admin_token()
    async with httpx.AsyncClient(
        base_url=rucio_server.url, headers={"X-Rucio-Auth-Token": token}, timeout=30
    ) as rucio:
        did = (await rucio.get(f"/dids/{scope}/{name}")).json()
        listed = await rucio.post("/replicas/list", json={"dids": [{"scope": scope, "name": name}]})
        rules = await rucio.get(f"/dids/{scope}/{name}/rules")
    assert did["bytes"] == len(data)
    assert did["md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    replicas = [json.loads(line) for line in listed.text.splitlines() if line.strip()]
    pfns = [pfn for replica in replicas for pfn in replica["rses"].get("VRE-DISK-1", [])]
    assert len(pfns) == 1
    stored = Path(unquote(urlsplit(pfns[0]).path))
    assert stored.read_bytes() == data  # noqa: ASYNC240 - a small file, read once
    accounts = [json.loads(line)["account"] for line in rules.text.splitlines() if line.strip()]
    assert accounts == [account]


async def test_concurrent_uploads_share_their_registration_requests(
    rucio_server: LocalRucio, proxy: CountingProxy, issuer: TestIssuer, uid: str
) -> None:
    """While one upload's replica is being registered, four more arrive: their replicas go in
    one ``POST /replicas`` and their rules in at most two ``POST /rules/`` (group commit), and
    each file is registered with its own checksums, bytes and rule."""
    settings = make_settings(**settings_params(rucio_server, issuer, rucio_url=proxy.url))
    app = create_app(settings, validator=issuer.validator())
    uploads = app.state.factory.uploads
    user = f"grp{uid[:6]}"
    headers = issuer.headers(user)
    async with app_client(app, timeout=60) as client:
        me = (await client.get("/scopes/mine", headers=headers)).json()
        scope, account = me["scope"], me["account"]
        warm = await client.put(f"/files/{scope}/{uid}-warm", content=b"w", headers=headers)
        assert warm.status_code == 201, warm.text

        proxy.requests.clear()
        gate = proxy.gates["POST /replicas"] = asyncio.Event()
        bodies = {f"{uid}/f{i}.dat": f"file {i}\n".encode() * (i + 1) for i in range(5)}
        names = list(bodies)

        async def put(name: str) -> httpx.Response:
            return await client.put(f"/files/{scope}/{name}", content=bodies[name],
                                    headers=headers)  # fmt: skip

        first = asyncio.create_task(put(names[0]))
        while "POST /replicas" not in proxy.requests:  # noqa: ASYNC110 - held at the proxy
            await asyncio.sleep(0.01)
        others = [asyncio.create_task(put(name)) for name in names[1:]]
        while uploads.replicas.waiting() < 4:  # noqa: ASYNC110 - a count, no event
            await asyncio.sleep(0.01)
        gate.set()
        answers = await asyncio.gather(first, *others)
        assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]

    assert proxy.requests.count("POST /replicas") == 2
    assert 2 <= proxy.requests.count("POST /rules/") <= 3
    token = rucio_server.admin_token()
    async with httpx.AsyncClient(
        base_url=rucio_server.url, headers={"X-Rucio-Auth-Token": token}, timeout=30
    ) as rucio:
        for name, data in bodies.items():
            did = (await rucio.get(f"/dids/{scope}/{name}")).json()
            assert did["md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
            rules = await rucio.get(f"/dids/{scope}/{name}/rules")
            owners = [json.loads(line)["account"] for line in rules.text.splitlines() if line]
            assert owners == [account]
            listed = await rucio.post(
                "/replicas/list", json={"dids": [{"scope": scope, "name": name}]}
            )
            pfn = json.loads(listed.text.splitlines()[0])["rses"]["VRE-DISK-1"][0]
            assert Path(unquote(urlsplit(pfn).path)).read_bytes() == data  # noqa: ASYNC240
