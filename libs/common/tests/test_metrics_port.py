"""METRICS_PORT: /metrics leaves the API port (which the Ingress routes) for a port of its own.

Without it (the embedded mode) /metrics stays on the API port; with it the app answers 404
there and the process serves the same registry on the metrics port; a bad value stops the
start instead of silently exposing the metrics.
"""

from __future__ import annotations

import httpx
import pytest

from vre_common.app import create_base_app
from vre_common.testing import app_client, free_port


async def test_metrics_move_to_their_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    inline = create_base_app(service="inline", title="t", description="d")
    async with app_client(inline) as client:
        assert (await client.get("/metrics")).status_code == 200

    port = free_port()
    monkeypatch.setenv("METRICS_PORT", str(port))
    monkeypatch.setenv("METRICS_ADDRESS", "127.0.0.1")
    separate = create_base_app(service="separate", title="t", description="d")
    async with app_client(separate) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404  # not on the API port
    async with httpx.AsyncClient() as http:
        scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert scraped.status_code == 200
    # the same registry: the request above was counted
    assert 'vre_http_requests_total{method="GET",route="/healthz",service="separate"' in (
        scraped.text
    )


def test_a_bad_metrics_port_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "ninety")
    with pytest.raises(ValueError, match="METRICS_PORT"):
        create_base_app(service="bad", title="t", description="d")
