"""Test helpers shared by every service: a signing key that plays the token issuer."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from vre_common.auth import StaticKeySource, TokenValidator
from vre_common.settings import AuthSettings

TEST_ISSUER = "https://iam.test.example/"
TEST_AUDIENCE = "vre"

USERS: dict[str, dict[str, Any]] = {
    "alice": {"groups": ["/vre", "/vre/alpha"], "email": "alice@example.org"},
    "bob": {"groups": ["/vre", "/vre/beta"], "email": "bob@example.org"},
    "carol": {"groups": ["/other"], "email": "carol@example.org"},
    "admin": {"groups": ["/vre", "/vre/admins"], "email": "admin@example.org"},
}


class TestIssuer:
    """An issuer whose private key the tests own: signs tokens the validator will trust."""

    __test__ = False  # not a pytest class

    def __init__(self, issuer: str = TEST_ISSUER, audience: str = TEST_AUDIENCE) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex[:12]})

    def subject(self, user: str) -> str:
        """A stable subject for a user name (as IAM uses UUIDs)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.issuer + user))

    def claims(self, user: str = "alice", **overrides: Any) -> dict[str, Any]:
        """Default WLCG-profile claims for ``user``; ``overrides`` replace (None removes)."""
        now = int(time.time())
        info = USERS.get(user, {"groups": []})
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject(user),
            "aud": self.audience,
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "preferred_username": user,
            "email": info.get("email"),
            "wlcg.ver": "1.0",
            "wlcg.groups": list(info["groups"]),
            "scope": "openid profile storage.read:/ storage.modify:/ compute.create",
        }
        for key, value in overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return claims

    def token(
        self,
        user: str = "alice",
        *,
        header: dict[str, Any] | None = None,
        key: RSAKey | None = None,
        **overrides: Any,
    ) -> str:
        """A signed RS256 access token for ``user``."""
        signing_key = key or self.key
        hdr = {"alg": "RS256", "kid": signing_key.kid}
        hdr.update(header or {})
        return jwt.encode(hdr, self.claims(user, **overrides), signing_key)

    def auth_settings(self, **kwargs: Any) -> AuthSettings:
        """AuthSettings that trust this issuer."""
        return AuthSettings(issuers=[self.issuer], audience=self.audience, **kwargs)

    def validator(self, **kwargs: Any) -> TokenValidator:
        """A validator with this issuer's public key in memory."""
        public = RSAKey.import_key(self.key.as_dict(private=False))
        return TokenValidator(
            self.auth_settings(**kwargs), StaticKeySource({self.issuer: [public]})
        )

    def headers(self, user: str = "alice", **overrides: Any) -> dict[str, str]:
        """An Authorization header for ``user``."""
        return {"Authorization": f"Bearer {self.token(user, **overrides)}"}


@asynccontextmanager
async def app_client(
    app: FastAPI, *, base_url: str = "http://testserver", **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in-process, with its lifespan running.

    (``httpx.ASGITransport`` buffers whole bodies: fine for tests of small payloads; the
    streaming tests run a real server instead.)
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs) as client:
            yield client


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for servers that must know their port up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """Serve an ASGI app with uvicorn on a free loopback port, in a background thread.

    For tests that need real HTTP (streaming bodies, a gateway proxying to a service).
    """

    __test__ = False

    def __init__(self, app: Any, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"test server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
