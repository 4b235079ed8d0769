"""/readyz says whether the gateway can serve; why a backend is down only to whom may know.

A backend that is down (here a service nobody listens for) is listed with its reason and
exported as ``vre_dependency_up`` = 0, but the gateway stays ready (200): Kubernetes keeps it
in its Service, and callers get the 503 with ``Retry-After`` it answers itself. With
``readiness_details="signed-in"`` (the deployments' setting) anonymous callers see up/down
only — reasons can name internal hosts — and signed-in callers see the reasons.
"""

from __future__ import annotations

from prometheus_client import REGISTRY

from vre_common.testing import TestIssuer, app_client, free_port
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app


def _settings(details: str) -> GatewaySettings:
    dead = f"http://127.0.0.1:{free_port()}"
    return GatewaySettings(
        mode="distributed",
        service_urls={"datalake": dead},
        readiness_details=details,  # type: ignore[arg-type]
    )


async def test_a_backend_down_is_reported_not_a_reason_to_leave_the_service() -> None:
    issuer = TestIssuer()
    app = create_app(_settings("public"), validator=issuer.validator())
    async with app_client(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        states = {d["name"]: d for d in ready.json()["dependencies"]}
        assert states["gateway"]["up"] is True
        assert states["gateway.database"]["up"] is True
        datalake = states["datalake"]
        assert (datalake["up"], datalake["optional"]) == (False, True)
        assert "unreachable" in datalake["reason"]
        # an API call that needs the backend is a 503 with Retry-After, from the gateway
        answer = await client.get("/datalake/rses", headers=issuer.headers())
        assert answer.status_code == 503
        assert answer.headers["retry-after"]
    assert (
        REGISTRY.get_sample_value(
            "vre_dependency_up", {"dependency": "datalake", "external": "true"}
        )
        == 0
    )
    assert (
        REGISTRY.get_sample_value(
            "vre_dependency_up", {"dependency": "gateway.database", "external": "false"}
        )
        == 1
    )


async def test_reasons_only_for_signed_in_callers() -> None:
    issuer = TestIssuer()
    app = create_app(_settings("signed-in"), validator=issuer.validator())
    async with app_client(app) as client:
        anonymous = (await client.get("/readyz")).json()["dependencies"]
        assert [d["reason"] for d in anonymous] == [None] * len(anonymous)
        assert any(not d["up"] for d in anonymous)  # up/down stays public
        forged = await client.get("/readyz", headers={"Authorization": "Bearer not-a-token"})
        assert all(d["reason"] is None for d in forged.json()["dependencies"])
        signed_in = await client.get("/readyz", headers=issuer.headers())
        reasons = {d["name"]: d["reason"] for d in signed_in.json()["dependencies"]}
        assert "unreachable" in str(reasons["datalake"])
