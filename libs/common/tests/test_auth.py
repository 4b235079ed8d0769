"""The token battery: every way a token can be wrong gets a 401 problem with a challenge."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from vre_common.app import create_base_app
from vre_common.deps import CurrentUser
from vre_common.link import GatewayLink, attach_link
from vre_common.testing import TestIssuer, app_client


def _app(issuer: TestIssuer) -> FastAPI:
    app = create_base_app(service="test", title="t", description="t")
    attach_link(app, GatewayLink(validator=issuer.validator()))

    @app.get("/who")
    async def who(user: CurrentUser) -> dict[str, Any]:
        return {"sub": user.subject, "groups": user.groups, "scopes": user.scopes}

    return app


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture
async def client(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(_app(issuer)) as c:
        yield c


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(issuer: TestIssuer, secret: bytes) -> str:
    """The classic key-confusion attack: HMAC with the RSA public key as the secret."""
    head = _b64(json.dumps({"alg": "HS256", "kid": issuer.key.kid}).encode())
    body = _b64(json.dumps(issuer.claims("alice")).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _tamper_payload(token: str, **changes: Any) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(changes)
    return ".".join([head, _b64(json.dumps(claims).encode()), sig])


async def test_valid_token_is_accepted(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    r = await client.get("/who", headers=issuer.headers("alice"))
    assert r.status_code == 200
    assert r.json()["sub"] == issuer.subject("alice")
    assert r.json()["groups"] == ["/vre", "/vre/alpha"]


def _bad_tokens(issuer: TestIssuer) -> dict[str, str]:
    now = int(time.time())
    other_key = RSAKey.generate_key(2048, parameters={"kid": issuer.key.kid})
    public_pem = issuer.key.as_pem(private=False)
    good = issuer.token("alice")
    head, payload, sig = good.split(".")
    flipped = sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")
    none_header = _b64(json.dumps({"alg": "none", "kid": issuer.key.kid}).encode())
    return {
        "expired": issuer.token(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "nbf in the future": issuer.token(nbf=now + 600),
        "iat in the future": issuer.token(iat=now + 600),
        "wrong issuer": issuer.token(iss="https://evil.example/"),
        "issuer without its trailing slash": issuer.token(iss=issuer.issuer.rstrip("/")),
        "wrong audience": issuer.token(aud="someone-else"),
        "no exp": issuer.token(exp=None),
        "missing sub": issuer.token(sub=None),
        "wlcg.ver 2.0": issuer.token(**{"wlcg.ver": "2.0"}),
        "storage scope without a path": issuer.token(scope="openid storage.read"),
        "alg none": f"{none_header}.{payload}.",
        "HS256 signed with the public key": _hs256(issuer, public_pem),
        "tampered payload": _tamper_payload(good, sub="someone-else"),
        "tampered signature": f"{head}.{payload}.{flipped}",
        "signed by an unknown key with a known kid": issuer.token(key=other_key),
        "unknown kid": issuer.token(header={"kid": "no-such-kid"}),
        "no kid": jwt.encode({"alg": "RS256"}, issuer.claims("alice"), issuer.key),
        "ES256 in the header, an RSA key behind the kid": (
            _b64(json.dumps({"alg": "ES256", "kid": issuer.key.kid}).encode()) + f".{payload}.{sig}"
        ),
        "a critical header extension": _signed_with_header(
            issuer, {"alg": "RS256", "kid": issuer.key.kid, "crit": ["x-vre"], "x-vre": 1}
        ),
        "garbage": "not-a-jwt",
        "three garbage parts": "a.b.c",
    }


def _signed_with_header(issuer: TestIssuer, header: dict[str, object]) -> str:
    """A correctly RS256-signed token with exactly ``header`` (joserfc would refuse to make
    one with an unknown critical extension)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = (
        _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(issuer.claims("alice")).encode())
    )
    private = issuer.key.get_op_key("sign")
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


BAD_NAMES = list(_bad_tokens(TestIssuer()).keys())


@pytest.mark.parametrize("case", BAD_NAMES)
async def test_bad_tokens_get_401_problem(
    client: httpx.AsyncClient, issuer: TestIssuer, case: str
) -> None:
    token = _bad_tokens(issuer)[case]
    r = await client.get("/who", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, (case, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    body = r.json()
    assert body["status"] == 401
    assert body["type"].endswith("/invalid-token")
    assert body["detail"]


async def test_missing_token_gets_challenge_without_error(client: httpx.AsyncClient) -> None:
    r = await client.get("/who")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in r.headers["www-authenticate"]


async def test_token_in_query_string_is_refused(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    r = await client.get("/who", params={"access_token": issuer.token()})
    assert r.status_code == 400
    assert "Authorization header" in r.json()["detail"]


async def test_leeway_accepts_slightly_early_nbf(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    r = await client.get("/who", headers=issuer.headers(nbf=int(time.time()) + 30))
    assert r.status_code == 200


async def test_groups_from_every_claim_shape(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    headers = issuer.headers(
        **{
            "wlcg.groups": None,
            "groups": ["escape", "/escape/cta"],
            "eduperson_entitlement": ["urn:mace:egi.eu:group:escape:lst:role=member#aai.egi.eu"],
        }
    )
    r = await client.get("/who", headers=headers)
    assert r.json()["groups"] == ["/escape", "/escape/cta", "/escape/lst"]


async def test_cached_token_still_rechecks_expiry(issuer: TestIssuer) -> None:
    validator = issuer.validator(leeway_seconds=0)
    token = issuer.token(exp=int(time.time()) + 1)
    await validator.validate(token)
    await validator.validate(token)  # cache hit
    await asyncio.sleep(1.1)
    from vre_common.errors import InvalidTokenError

    with pytest.raises(InvalidTokenError, match="expired"):
        await validator.validate(token)


def test_storage_scope_prefix_semantics(issuer: TestIssuer) -> None:
    from vre_common.auth import Principal

    p = Principal(
        subject="s",
        issuer="i",
        username="u",
        expires_at=0,
        scopes=["storage.read:/foo", "storage.modify:/bar", "compute.create"],
    )
    assert p.has_scope("storage.read:/foo")
    assert p.has_scope("storage.read:/foo/x")
    assert not p.has_scope("storage.read:/foobar")
    assert p.has_scope("storage.create:/bar/y")  # modify ⊇ create
    assert not p.has_scope("storage.read:/bar")  # modify does not give read
    assert p.has_scope("compute.create")
    assert not p.has_scope("compute.cancel")


async def test_missing_scope_is_403_insufficient_scope(issuer: TestIssuer) -> None:
    app = create_base_app(service="test", title="t", description="t")
    attach_link(app, GatewayLink(validator=issuer.validator()))

    @app.get("/data")
    async def data(user: CurrentUser) -> dict[str, str]:
        user.require_scope("storage.read:/vre/data")
        return {"ok": "yes"}

    async with app_client(app) as client:
        allowed = await client.get("/data", headers=issuer.headers(scope="storage.read:/vre"))
        assert allowed.status_code == 200
        refused = await client.get("/data", headers=issuer.headers(scope="storage.read:/other"))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="storage.read:/vre/data"' in challenge
