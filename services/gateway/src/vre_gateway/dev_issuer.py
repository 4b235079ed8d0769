"""The embedded development issuer: discovery, JWKS and a token endpoint on loopback.

Only for the embedded mode: it lets a developer get a token with ``vre token alice`` and
makes the gateway validate it through the same discovery → JWKS path as a real IAM.
The signing key lives in the data folder, so the CLI and the server share it.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import BaseModel

from vre_common.errors import InvalidInputError, InvalidTokenError
from vre_gateway.config import DevIssuerSettings, DevUser


class DevIssuer:
    """Signs WLCG-profile access tokens for configured development users."""

    def __init__(self, data_dir: Path, issuer: str, settings: DevIssuerSettings) -> None:
        self.issuer = issuer
        self.settings = settings
        self.folder = data_dir / "dev-issuer"
        self.key = self._load_or_create_key()
        self.passwords = self._load_or_create_passwords()

    def _load_or_create_key(self) -> RSAKey:
        path = self.folder / "signing-key.json"
        if path.exists():
            return RSAKey.import_key(json.loads(path.read_text()))
        self.folder.mkdir(parents=True, exist_ok=True)
        key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex[:16]})
        _write_private(path, json.dumps(key.as_dict(private=True)))
        return key

    def _load_or_create_passwords(self) -> dict[str, str]:
        path = self.folder / "passwords.json"
        known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [u for u in self.settings.users if u not in known]
        if missing or not path.exists():
            for user in missing:
                known[user] = secrets.token_urlsafe(9)
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_private(path, json.dumps(known, indent=2))
        return known

    def subject(self, user: str) -> str:
        """A stable subject per development user (independent of the port)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "vre-dev-issuer:" + user))

    def user(self, name: str) -> DevUser:
        """The configured user, or 422."""
        try:
            return self.settings.users[name]
        except KeyError:
            known = ", ".join(sorted(self.settings.users))
            raise InvalidInputError(f"unknown development user {name!r} (known: {known})") from None

    def issue(self, name: str, *, lifetime: int | None = None, scope: str | None = None) -> str:
        """A signed access token for the development user ``name``."""
        info = self.user(name)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject(name),
            "aud": self.settings.audience,
            "iat": now,
            "nbf": now,
            "exp": now + (lifetime or self.settings.token_lifetime_seconds),
            "jti": uuid.uuid4().hex,
            "client_id": "vre-dev",
            "preferred_username": name,
            "wlcg.ver": "1.0",
            "wlcg.groups": info.groups,
            "scope": scope
            or "openid profile email storage.read:/ storage.modify:/ "
            "compute.read compute.create compute.cancel compute.modify",
        }
        if info.email:
            claims["email"] = info.email
        if info.name:
            claims["name"] = info.name
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def check_password(self, name: str, password: str) -> bool:
        """Constant-time password check for the token endpoint and login form."""
        expected = self.passwords.get(name)
        return expected is not None and secrets.compare_digest(expected, password)

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        public = self.key.as_dict(private=False)
        public.update({"use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + "jwk",
            "token_endpoint": self.issuer + "token",
            "grant_types_supported": ["password"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "profile", "email"],
        }


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class TokenAnswer(BaseModel):
    """An OAuth 2 token response."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


def dev_issuer_router(issuer: DevIssuer) -> APIRouter:
    """Routes of the development issuer (mounted under its path, outside the API docs)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return issuer.discovery()

    @router.get("/jwk")
    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    @router.post("/token")
    async def token(
        grant_type: Annotated[str, Form()],
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
    ) -> TokenAnswer:
        if grant_type != "password":
            raise InvalidInputError(f"unsupported grant_type {grant_type!r}; use 'password'")
        if not issuer.check_password(username, password):
            raise InvalidTokenError("unknown user or wrong password")
        return TokenAnswer(
            access_token=issuer.issue(username),
            expires_in=issuer.settings.token_lifetime_seconds,
        )

    return router
