"""Self-test of the real OpenID provider fixture (tests/oidc/server.mjs + tests/support)."""

from __future__ import annotations

import time
from typing import Any, cast

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet

from tests.support.oidc_provider import OidcProvider, TokenRequestError


def _keyset(jwks: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(cast(Any, jwks))


def _verify(token: str, jwks: dict[str, Any]) -> jwt.Token:
    return jwt.decode(token, _keyset(jwks), algorithms=["RS256"])


def _header(token: str) -> dict[str, Any]:
    return dict(jws.extract_compact(token.encode()).protected)


def _kids(jwks: dict[str, Any]) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


def test_discovery_has_exact_issuer_and_jwks_uri(oidc_provider: OidcProvider) -> None:
    discovery = oidc_provider.discovery()
    assert oidc_provider.issuer.endswith("/")
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["issuer"] == f"http://127.0.0.1:{oidc_provider.port}/"
    assert discovery["jwks_uri"] == oidc_provider.jwks_url
    assert discovery["token_endpoint"] == oidc_provider.token_url
    assert "password" in discovery["grant_types_supported"]
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in discovery["grant_types_supported"]


def test_password_token_is_a_verifiable_wlcg_jwt(oidc_provider: OidcProvider) -> None:
    before = int(time.time())
    token = oidc_provider.password_token("alice", scope="openid wlcg.groups storage.read:/vre")
    header = _header(token)
    assert header["alg"] == "RS256"
    assert "typ" not in header  # like IAM
    jwks = oidc_provider.jwks()
    assert header["kid"] in _kids(jwks)

    claims = _verify(token, jwks).claims
    assert claims["iss"] == oidc_provider.issuer
    assert claims["sub"] == oidc_provider.subject("alice")
    assert claims["aud"] == "vre"
    assert claims["exp"] >= before + 3600 - 5
    assert claims["nbf"] <= int(time.time())
    assert claims["wlcg.ver"] == "1.0"
    assert claims["wlcg.groups"] == ["/vre", "/vre/alpha"]
    assert claims["scope"] == "openid wlcg.groups storage.read:/vre"
    assert claims["preferred_username"] == "alice"
    assert claims["client_id"] == "vre-test"


def test_groups_only_with_the_wlcg_groups_scope(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.password_token("bob", scope="storage.read:/vre", audience="other-aud")
    claims = _verify(token, oidc_provider.jwks()).claims
    assert "wlcg.groups" not in claims
    assert claims["scope"] == "storage.read:/vre"
    assert claims["aud"] == "other-aud"
    assert claims["sub"] == oidc_provider.subject("bob")


def test_subjects_are_stable_and_distinct(oidc_provider: OidcProvider) -> None:
    subs = {oidc_provider.subject(u) for u in ("alice", "bob", "carol", "admin")}
    assert len(subs) == 4
    first = _verify(oidc_provider.password_token("carol"), oidc_provider.jwks()).claims
    second = _verify(oidc_provider.password_token("carol"), oidc_provider.jwks()).claims
    assert first["sub"] == second["sub"] == oidc_provider.subject("carol")
    assert first["wlcg.groups"] == ["/other"]
    assert first["jti"] != second["jti"]


def test_knobs_for_negative_tests(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.password_token(
        "alice",
        audience=["vre", "rucio"],
        expires_in=-60,
        not_before=120,
        extra_claims={"wlcg.ver": "2.0", "client_id": None},
    )
    claims = jwt.decode(token, _keyset(oidc_provider.jwks())).claims
    assert claims["aud"] == ["vre", "rucio"]
    assert claims["exp"] < time.time()
    assert claims["nbf"] > time.time()
    assert claims["wlcg.ver"] == "2.0"
    assert "client_id" not in claims


def test_client_credentials_token(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.client_credentials_token(scope="compute.read", audience="rucio")
    claims = _verify(token, oidc_provider.jwks()).claims
    assert claims["sub"] == "vre-test"
    assert claims["aud"] == "rucio"
    assert claims["scope"] == "compute.read"
    assert claims["wlcg.ver"] == "1.0"
    assert "wlcg.groups" not in claims


def test_token_exchange_keeps_subject(oidc_provider: OidcProvider) -> None:
    token = oidc_provider.password_token("bob", scope="openid wlcg.groups storage.read:/vre")
    exchanged = oidc_provider.exchange(token, "rucio", scope="wlcg.groups storage.read:/vre")
    claims = _verify(exchanged, oidc_provider.jwks()).claims
    assert claims["sub"] == oidc_provider.subject("bob")
    assert claims["aud"] == "rucio"
    assert claims["scope"] == "wlcg.groups storage.read:/vre"
    assert claims["wlcg.groups"] == ["/vre", "/vre/beta"]


def test_token_endpoint_errors(oidc_provider: OidcProvider) -> None:
    with pytest.raises(TokenRequestError) as wrong_password:
        oidc_provider.password_token("alice", password="wrong")
    assert (wrong_password.value.status, wrong_password.value.error) == (400, "invalid_grant")
    with pytest.raises(TokenRequestError) as bad_client:
        oidc_provider.client_credentials_token(client_id="vre-test", client_secret="nope")
    assert (bad_client.value.status, bad_client.value.error) == (401, "invalid_client")
    token = oidc_provider.password_token("alice")
    with pytest.raises(TokenRequestError) as not_allowed:
        oidc_provider.exchange(
            token, "rucio", client_id="vre-other", client_secret="vre-other-secret"
        )
    assert not_allowed.value.status == 400


async def test_async_helpers(oidc_provider: OidcProvider) -> None:
    token = await oidc_provider.apassword_token("carol", scope="wlcg.groups")
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(oidc_provider.jwks_url)).json()
    claims = _verify(token, jwks).claims
    assert claims["sub"] == oidc_provider.subject("carol")
    exchanged = await oidc_provider.aexchange(token, "rucio")
    assert _verify(exchanged, jwks).claims["aud"] == "rucio"
    cc = await oidc_provider.aclient_credentials_token()
    assert _verify(cc, jwks).claims["sub"] == "vre-test"


def test_rotation(oidc_provider: OidcProvider) -> None:
    old_token = oidc_provider.password_token("alice")
    old_jwks = oidc_provider.jwks()
    old_kid = _header(old_token)["kid"]
    assert old_kid in _kids(old_jwks)

    # keep_old: both keys published, the new one signs, old tokens still verify
    state = oidc_provider.rotate(keep_old=True)
    both = oidc_provider.jwks()
    assert _kids(both) == {state["signing_kid"], old_kid}
    mid_token = oidc_provider.password_token("alice")
    assert _header(mid_token)["kid"] == state["signing_kid"] != old_kid
    _verify(old_token, both)
    _verify(mid_token, both)

    # plain rotate: only the newest key is published
    state = oidc_provider.rotate()
    new_jwks = oidc_provider.jwks()
    new_token = oidc_provider.password_token("alice")
    new_kid = _header(new_token)["kid"]
    assert new_kid == state["signing_kid"]
    assert new_kid != old_kid
    assert _kids(new_jwks) == {new_kid}
    claims = _verify(new_token, new_jwks).claims
    assert claims["iss"] == oidc_provider.issuer
    assert oidc_provider.discovery()["issuer"] == oidc_provider.issuer
    with pytest.raises(InvalidKeyIdError):
        _verify(old_token, new_jwks)
    # the provider no longer accepts a token signed with a withdrawn key for exchange
    with pytest.raises(TokenRequestError):
        oidc_provider.exchange(old_token, "rucio")
