"""The OpenID provider becomes unreachable: warm and cold key caches, then recovery.

"Unreachable" here is the harder kind: the provider's process is frozen (SIGSTOP), so
connections are accepted and never answered — only the configured timeout ends a key fetch.
A refusing provider (process gone) is covered by tests/test_oidc_integration.py
(``test_issuer_outage_warm_and_cold_cache``). SIGCONT brings the same provider back (same
issuer, same keys), and the cold gateway then validates without a restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.faults.support import assert_problem, assert_within
from tests.support.oidc_provider import OidcProvider
from vre_common.auth import OidcKeySource, TokenValidator
from vre_common.settings import AuthSettings
from vre_common.testing import app_client
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app

HTTP_TIMEOUT = 1.0  # AuthSettings.http_timeout_seconds of the gateways below


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with OidcProvider.start() as started:  # its own: it is frozen below
        try:
            yield started
        finally:
            os.kill(started.process.pid, signal.SIGCONT)


def _gateway(issuer: str) -> tuple[object, OidcKeySource]:
    settings = AuthSettings(
        issuers=[issuer],
        audience="vre",
        http_timeout_seconds=HTTP_TIMEOUT,
        jwks_min_refresh_seconds=0,
    )
    keys = OidcKeySource(settings)
    app = create_app(GatewaySettings(auth=settings), validator=TokenValidator(settings, keys))
    return app, keys


async def test_provider_unreachable_warm_and_cold_caches(provider: OidcProvider) -> None:
    alice = await provider.apassword_token("alice")
    bob = await provider.apassword_token("bob")  # first presented during the outage
    warm_app, warm_keys = _gateway(provider.issuer)
    cold_app, cold_keys = _gateway(provider.issuer)
    try:
        async with app_client(warm_app) as warm, app_client(cold_app) as cold:  # type: ignore[arg-type]
            r = await warm.get("/me", headers={"Authorization": f"Bearer {alice}"})
            assert r.status_code == 200, r.text

            os.kill(provider.process.pid, signal.SIGSTOP)
            # warm: the cached keys validate a token never seen before, with no fetch
            started = time.monotonic()
            r = await warm.get("/me", headers={"Authorization": f"Bearer {bob}"})
            assert r.status_code == 200, r.text
            assert r.json()["username"] == "bob"
            assert_within(started, HTTP_TIMEOUT, "warm key cache")
            # cold: no key at all and the provider silent → 503 once the fetch times out
            started = time.monotonic()
            r = await cold.get("/me", headers={"Authorization": f"Bearer {bob}"})
            assert_within(started, 2 * HTTP_TIMEOUT, "cold key cache")  # discovery + JWKS
            assert_problem(r, 503)
            assert "Retry-After" in r.headers

            os.kill(provider.process.pid, signal.SIGCONT)
            r = await cold.get("/me", headers={"Authorization": f"Bearer {bob}"})
            assert r.status_code == 200, r.text
            r = await warm.get("/me", headers={"Authorization": f"Bearer {alice}"})
            assert r.status_code == 200, r.text
    finally:
        await warm_keys.aclose()
        await cold_keys.aclose()
        await asyncio.sleep(0)
