"""Token validation throughput: uncached, cached (still re-checking exp/aud), cold key cache.

Baseline: a bare RS256 signature verification with ``cryptography`` on the same token — the
floor any JOSE library sits on.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bench.report import Row
from vre_common.auth import OidcKeySource, TokenValidator
from vre_common.testing import ServerThread, TestIssuer


def _per_second(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _bare_verify(issuer: TestIssuer, tokens: list[str]) -> float:
    public = issuer.key.get_op_key("verify")
    start = time.perf_counter()
    for token in tokens:
        head, payload, sig = token.split(".")
        public.verify(
            base64.urlsafe_b64decode(sig + "=="),
            f"{head}.{payload}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    return _per_second(len(tokens), time.perf_counter() - start)


async def _validate_all(validator: TokenValidator, tokens: list[str]) -> float:
    start = time.perf_counter()
    for token in tokens:
        await validator.validate(token)
    return _per_second(len(tokens), time.perf_counter() - start)


async def _cold_key_cache(issuer: TestIssuer, rounds: int) -> float:
    """Milliseconds to validate a first token with an empty key cache (discovery + JWKS)."""
    from fastapi import FastAPI

    public = issuer.key.as_dict(private=False)
    jwks_app = FastAPI()
    server = ServerThread(jwks_app)
    local = TestIssuer(issuer=server.url + "/")
    local.key = issuer.key

    @jwks_app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {"issuer": local.issuer, "jwks_uri": local.issuer + "jwk"}

    @jwks_app.get("/jwk")
    async def jwk() -> dict[str, Any]:
        return {"keys": [public]}

    with server:
        token = local.token("alice")
        total = 0.0
        for _ in range(rounds):
            keys = OidcKeySource(local.auth_settings())
            validator = TokenValidator(local.auth_settings(cache_size=0), keys)
            start = time.perf_counter()
            await validator.validate(token)
            total += time.perf_counter() - start
            await keys.aclose()
    return total / rounds * 1000


def run(quick: bool = False) -> list[Row]:
    """Measure and return the table rows."""
    n = 2_000 if quick else 10_000
    issuer = TestIssuer()
    tokens = [issuer.token("alice", jti=str(i)) for i in range(n)]
    bare = _bare_verify(issuer, tokens)
    uncached = asyncio.run(_validate_all(issuer.validator(cache_size=0), tokens))
    validator = issuer.validator()
    asyncio.run(_validate_all(validator, tokens[:1]))
    cached = asyncio.run(_validate_all(validator, tokens[:1] * (n * 10)))
    cold_ms = asyncio.run(_cold_key_cache(issuer, 5 if quick else 20))
    return [
        Row("token", "bare RS256 verify (cryptography)", bare, "validations/s", baseline=bare),
        Row(
            "token",
            "validate, uncached",
            uncached,
            "validations/s",
            baseline=bare,
            target=">= 20,000/s",
            ok=uncached >= 20_000,
        ),
        Row(
            "token",
            "validate, cached (re-checks exp/aud)",
            cached,
            "validations/s",
            baseline=bare,
            target=">= 200,000/s",
            ok=cached >= 200_000,
        ),
        Row("token", "first token, cold key cache (discovery + JWKS)", cold_ms, "ms"),
    ]
