"""The datalake app mounted in the gateway (embedded mode): routes under /datalake."""

from __future__ import annotations

import hashlib

from vre_common.testing import TestIssuer, app_client
from vre_datalake.config import DatalakeSettings
from vre_datalake.main import create_app
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway


async def test_mounted_under_gateway(
    dl_settings: DatalakeSettings, issuer: TestIssuer, uid: str
) -> None:
    settings = GatewaySettings(auth=issuer.auth_settings())
    factory = Factory(settings, validator=issuer.validator())
    datalake = create_app(dl_settings, link=factory.link)
    gateway = create_gateway(settings, factory=factory, service_apps={"datalake": datalake})
    body = b"g" * (11 << 20)  # above the gateway's default body limit: uploads are exempt
    async with app_client(gateway, timeout=120) as http:
        put = await http.put(
            f"/datalake/files/user.alice/{uid}/via-gateway.bin",
            content=body,
            headers=issuer.headers(),
        )
        assert put.status_code == 201, put.text
        assert put.json()["md5"] == hashlib.md5(body).hexdigest()
        did = await http.get(
            f"/datalake/dids/user.alice/{uid}/via-gateway.bin", headers=issuer.headers()
        )
        assert did.status_code == 200, did.text
        forbidden = await http.get("/datalake/dids/user.bob", headers=issuer.headers())
        assert forbidden.status_code in (403, 404)
        assert forbidden.headers["content-type"] == "application/problem+json"
        spec = (await http.get("/openapi.json")).json()
        assert "/datalake/files/{scope}/{name}" in spec["paths"]
        ready = await http.get("/readyz")
        assert any(d["name"] == "datalake.rucio" and d["up"] for d in ready.json()["dependencies"])
