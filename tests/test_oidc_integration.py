"""The gateway against a real OpenID provider: discovery, JWKS, rotation, outages."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.support.oidc_provider import OidcProvider
from vre_common.auth import OidcKeySource, TokenValidator
from vre_common.settings import AuthSettings
from vre_common.testing import app_client
from vre_gateway.config import GatewaySettings
from vre_gateway.main import create_app


def _gateway(issuer: str, **auth: object) -> tuple[FastAPI, OidcKeySource]:
    settings = AuthSettings(issuers=[issuer], audience="vre", **auth)  # type: ignore[arg-type]
    keys = OidcKeySource(settings)
    app = create_app(GatewaySettings(auth=settings), validator=TokenValidator(settings, keys))
    return app, keys


@pytest.fixture
async def gateway(
    oidc_provider: OidcProvider,
) -> AsyncIterator[tuple[httpx.AsyncClient, OidcKeySource]]:
    app, keys = _gateway(oidc_provider.issuer, jwks_min_refresh_seconds=60)
    async with app_client(app) as client:
        yield client, keys
    await keys.aclose()


async def test_password_grant_token_accepted_through_discovery(
    oidc_provider: OidcProvider, gateway: tuple[httpx.AsyncClient, OidcKeySource]
) -> None:
    client, keys = gateway
    token = await oidc_provider.apassword_token("alice")
    r = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["issuer"] == oidc_provider.issuer
    assert me["subject"] == oidc_provider.subject("alice")
    assert me["groups"] == ["/vre", "/vre/alpha"]
    assert 0 < me["expires_in"] <= 3600
    assert keys.fetch_count == 1


async def test_client_credentials_token_accepted(
    oidc_provider: OidcProvider, gateway: tuple[httpx.AsyncClient, OidcKeySource]
) -> None:
    client, _ = gateway
    token = await oidc_provider.aclient_credentials_token()
    r = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["subject"] == oidc_provider.client_id


async def test_other_audience_from_token_exchange_is_refused(
    oidc_provider: OidcProvider, gateway: tuple[httpx.AsyncClient, OidcKeySource]
) -> None:
    client, _ = gateway
    token = await oidc_provider.apassword_token("bob")
    rucio_token = await oidc_provider.aexchange(token, "rucio")
    r = await client.get("/me", headers={"Authorization": f"Bearer {rucio_token}"})
    assert r.status_code == 401
    assert "audience" in r.json()["detail"]


async def test_flood_of_random_kids_fetches_at_most_once(
    oidc_provider: OidcProvider, gateway: tuple[httpx.AsyncClient, OidcKeySource]
) -> None:
    client, keys = gateway
    good = await oidc_provider.apassword_token("alice")
    assert (await client.get("/me", headers={"Authorization": f"Bearer {good}"})).status_code == 200
    before = keys.fetch_count
    _, payload, sig = good.split(".")

    async def attempt() -> int:
        header = {"alg": "RS256", "kid": uuid.uuid4().hex}
        forged_head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        r = await client.get(
            "/me", headers={"Authorization": f"Bearer {forged_head}.{payload}.{sig}"}
        )
        return r.status_code

    statuses = await asyncio.gather(*(attempt() for _ in range(50)))
    assert set(statuses) == {401}
    assert keys.fetch_count - before <= 1


@pytest.fixture(scope="module")
def rotating_provider() -> Iterator[OidcProvider]:
    with OidcProvider.start() as provider:  # its own instance: rotation must not leak
        yield provider


async def test_key_rotation(rotating_provider: OidcProvider) -> None:
    app, keys = _gateway(rotating_provider.issuer, jwks_min_refresh_seconds=0)
    async with app_client(app) as client:
        old = await rotating_provider.apassword_token("alice")
        r = await client.get("/me", headers={"Authorization": f"Bearer {old}"})
        assert r.status_code == 200
        old_unused = await rotating_provider.apassword_token("bob")
        await rotating_provider.arotate()
        fetches = keys.fetch_count
        new = await rotating_provider.apassword_token("alice")
        r = await client.get("/me", headers={"Authorization": f"Bearer {new}"})
        assert r.status_code == 200, r.text
        assert keys.fetch_count == fetches + 1  # exactly one refresh for the new kid
        # Tokens of the withdrawn key: refused, whether seen before (cached) or not.
        for token in (old, old_unused):
            r = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, r.text
    await keys.aclose()


async def test_issuer_outage_warm_and_cold_cache() -> None:
    with OidcProvider.start() as provider:
        first = provider.password_token("alice")
        second = provider.password_token("bob")  # never presented before the outage
        warm_app, warm_keys = _gateway(provider.issuer, jwks_min_refresh_seconds=0)
        cold_app, cold_keys = _gateway(provider.issuer, jwks_min_refresh_seconds=0)
        async with app_client(warm_app) as warm:
            r = await warm.get("/me", headers={"Authorization": f"Bearer {first}"})
            assert r.status_code == 200
            provider.stop()
            # warm key cache: a token not seen before still verifies during the outage
            r = await warm.get("/me", headers={"Authorization": f"Bearer {second}"})
            assert r.status_code == 200, r.text
            assert r.json()["username"] == "bob"
        async with app_client(cold_app) as cold:
            r = await cold.get("/me", headers={"Authorization": f"Bearer {second}"})
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert "Retry-After" in r.headers
        await warm_keys.aclose()
        await cold_keys.aclose()
