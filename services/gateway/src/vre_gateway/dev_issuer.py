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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import BaseModel, ValidationError

from vre_common.errors import InvalidInputError, InvalidTokenError
from vre_gateway.config import DevIssuerSettings, DevUser
from vre_gateway.web.oidc import s256


class DevIssuer:
    """Signs WLCG-profile access tokens for configured development users."""

    def __init__(self, data_dir: Path, issuer: str, settings: DevIssuerSettings) -> None:
        self.issuer = issuer
        self.settings = settings
        self.folder = data_dir / "dev-issuer"
        self.key = self._load_or_create_key()
        self.passwords = self._load_or_create_passwords()
        self.codes: dict[str, _Grant] = {}
        self.refresh_tokens: dict[str, _Grant] = {}

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

    def grant_code(self, user: str, request: AuthorizeRequest) -> str:
        """A single-use authorization code for ``user`` (valid one minute)."""
        self._expire()
        code = secrets.token_urlsafe(24)
        self.codes[code] = _Grant(user, request.client_id, time.time() + 60, request)
        return code

    def redeem_code(self, code: str, *, client_id: str, redirect_uri: str, verifier: str) -> str:
        """The user behind a code, checking client, redirect URI and PKCE (RFC 7636)."""
        self._expire()
        grant = self.codes.pop(code, None)  # single use, even when the checks fail
        if grant is None or grant.request is None:
            raise InvalidTokenError("unknown, used or expired authorization code")
        request = grant.request
        if client_id != request.client_id or redirect_uri != request.redirect_uri:
            raise InvalidTokenError("the code was issued to another client or redirect URI")
        if not verifier or not secrets.compare_digest(s256(verifier), request.code_challenge):
            raise InvalidTokenError("the PKCE code_verifier does not match the code_challenge")
        return grant.user

    def new_refresh_token(self, user: str, client_id: str) -> str:
        """An opaque refresh token (kept in memory: a restart asks users to sign in again)."""
        token = secrets.token_urlsafe(32)
        lifetime = self.settings.refresh_token_lifetime_seconds
        self.refresh_tokens[token] = _Grant(user, client_id, time.time() + lifetime)
        return token

    def redeem_refresh_token(self, token: str, *, client_id: str) -> str:
        """The user behind a refresh token, which is rotated (single use)."""
        self._expire()
        grant = self.refresh_tokens.pop(token, None)
        if grant is None or grant.client_id != client_id:
            raise InvalidTokenError("unknown, used or expired refresh token")
        return grant.user

    def _expire(self) -> None:
        now = time.time()
        for table in (self.codes, self.refresh_tokens):
            for key in [k for k, g in table.items() if g.expires_at < now]:
                del table[key]

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
            "authorization_endpoint": self.issuer + "authorize",
            "grant_types_supported": ["authorization_code", "refresh_token", "password"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "profile", "email"],
        }


class AuthorizeRequest(BaseModel):
    """An authorization request (RFC 6749 §4.1.1 with PKCE)."""

    response_type: str
    client_id: str
    redirect_uri: str
    scope: str = "openid"
    state: str = ""
    code_challenge: str = ""
    code_challenge_method: str = ""

    def problem(self, issuer: str) -> str | None:
        """Why the request cannot be served, or None."""
        origin = issuer.split("/", 3)
        same_origin = "/".join(origin[:3]) + "/"
        if self.response_type != "code":
            return f"unsupported response_type {self.response_type!r}; use 'code'"
        if not self.redirect_uri.startswith(same_origin):
            return "the redirect_uri must be on this VRE (the development issuer serves it only)"
        if self.code_challenge_method != "S256" or not self.code_challenge:
            return "PKCE is required: send code_challenge with code_challenge_method=S256"
        return None


@dataclass
class _Grant:
    user: str
    client_id: str
    expires_at: float
    request: AuthorizeRequest | None = None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class TokenAnswer(BaseModel):
    """An OAuth 2 token response."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


def dev_issuer_router(issuer: DevIssuer) -> APIRouter:
    """Routes of the development issuer (mounted under its path, outside the API docs)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return issuer.discovery()

    @router.get("/jwk")
    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    @router.get("/authorize")
    async def authorize_form(request: Request) -> HTMLResponse:
        params = dict(request.query_params)
        try:
            ask = AuthorizeRequest.model_validate(params)
        except ValidationError:
            return _login_page(request, issuer, {}, error="incomplete authorization request")
        problem = ask.problem(issuer.issuer)
        return _login_page(
            request, issuer, ask.model_dump(), error=problem, status=400 if problem else 200
        )

    @router.post("/authorize")
    async def authorize(
        request: Request,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
    ) -> Response:
        form = await request.form()
        fields = {k: str(v) for k, v in form.items() if k not in ("username", "password")}
        try:
            ask = AuthorizeRequest.model_validate(fields)
        except ValidationError:
            return _login_page(
                request, issuer, {}, error="incomplete authorization request", status=400
            )
        problem = ask.problem(issuer.issuer)
        if problem:
            return _login_page(request, issuer, ask.model_dump(), error=problem, status=400)
        if not issuer.check_password(username, password):
            return _login_page(
                request,
                issuer,
                ask.model_dump(),
                error="Unknown user or wrong password.",
                status=401,
                username=username,
            )
        code = issuer.grant_code(username, ask)
        query = urlencode({"code": code, "state": ask.state})
        separator = "&" if "?" in ask.redirect_uri else "?"
        return RedirectResponse(ask.redirect_uri + separator + query, status_code=303)

    @router.post("/token")
    async def token(
        *,
        grant_type: Annotated[str, Form()],
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        code: Annotated[str, Form()] = "",
        redirect_uri: Annotated[str, Form()] = "",
        code_verifier: Annotated[str, Form()] = "",
        client_id: Annotated[str, Form()] = "",
        refresh_token: Annotated[str, Form()] = "",
    ) -> TokenAnswer:
        if grant_type == "password":
            if not issuer.check_password(username, password):
                raise InvalidTokenError("unknown user or wrong password")
            user = username
        elif grant_type == "authorization_code":
            user = issuer.redeem_code(
                code, client_id=client_id, redirect_uri=redirect_uri, verifier=code_verifier
            )
        elif grant_type == "refresh_token":
            user = issuer.redeem_refresh_token(refresh_token, client_id=client_id)
        else:
            raise InvalidInputError(
                f"unsupported grant_type {grant_type!r}; use authorization_code, "
                "refresh_token or password"
            )
        return TokenAnswer(
            access_token=issuer.issue(user),
            expires_in=issuer.settings.token_lifetime_seconds,
            refresh_token=issuer.new_refresh_token(user, client_id)
            if grant_type != "password"
            else None,
        )

    return router


def _login_page(
    request: Request,
    issuer: DevIssuer,
    hidden: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
    username: str = "",
) -> HTMLResponse:
    from vre_gateway.web.routes import PAGE_HEADERS, templates

    return templates.TemplateResponse(
        request,
        "dev_login.html",
        {
            "action": issuer.issuer + "authorize",
            "hidden": hidden,
            "error": error,
            "username": username,
            "users": sorted(issuer.settings.users),
            "password_file": str(issuer.folder / "passwords.json"),
        },
        status_code=status,
        headers=PAGE_HEADERS,
    )
