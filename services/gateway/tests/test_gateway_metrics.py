"""The gateway's /metrics: requests to mounted services are counted once, by the service."""

from __future__ import annotations

from vre_common.app import create_base_app
from vre_common.link import link_service
from vre_common.testing import TestIssuer, app_client
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app


async def test_mounted_requests_are_counted_once_by_their_service() -> None:
    service = create_base_app(service="mountdemo", title="m", description="m")

    @service.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    issuer = TestIssuer()
    settings = GatewaySettings()
    factory = Factory(settings, validator=issuer.validator())
    app = create_app(
        settings, factory=factory, service_apps={"md": link_service(service, factory.link)}
    )
    async with app_client(app) as client:
        for i in range(2):
            assert (await client.get(f"/md/things/{i}")).status_code == 200
        assert (await client.get("/me", headers=issuer.headers())).status_code == 200
        body = (await client.get("/metrics")).text
    lines = [line for line in body.splitlines() if line.startswith("vre_http_requests_total{")]
    assert (
        'vre_http_requests_total{method="GET",route="/things/{thing_id}",'
        'service="mountdemo",status="200"} 2.0'
    ) in lines
    assert not any('service="gateway"' in line and "/md" in line for line in lines)
    assert any('route="/me",service="gateway",status="200"' in line for line in lines)
