"""The gateway as an OpenID Connect relying party: authorization code flow with PKCE.

The browser never holds the refresh token: the code is exchanged here, server-side, and the
tokens are kept in the gateway's session store. Transport failures of the issuer become
503/504 problems (never a hang: every call has the client's timeouts).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ValidationError

from vre_common.errors import BadGatewayError, InvalidTokenError
from vre_common.http import backend_call
from vre_gateway.config import WebSettings

DISCOVERY_TTL = 300.0


class ProviderMetadata(BaseModel):
    """The parts of the issuer's discovery document the sign-in uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None = None


class TokenResponse(BaseModel):
    """An OAuth 2 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None


def s256(verifier: str) -> str:
    """The S256 challenge of a PKCE verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pkce:
    """A PKCE verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """A fresh pair (a 64-character verifier)."""
        verifier = secrets.token_urlsafe(48)
        return cls(verifier, s256(verifier))


class OidcClient:
    """Discovery (cached), the authorization URL, code exchange and refresh for one issuer."""

    def __init__(self, issuer: str, settings: WebSettings, http: httpx.AsyncClient) -> None:
        self.issuer = issuer
        self.settings = settings
        self.http = http
        self._metadata: ProviderMetadata | None = None
        self._fetched = 0.0

    async def metadata(self) -> ProviderMetadata:
        """The issuer's endpoints (discovery, cached for five minutes)."""
        if self._metadata is None or time.monotonic() - self._fetched > DISCOVERY_TTL:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            async with backend_call("the issuer", "discovery"):
                response = await self.http.get(url)
            if response.status_code != 200:
                raise BadGatewayError(
                    f"the issuer's discovery document answered {response.status_code}"
                )
            try:
                self._metadata = ProviderMetadata.model_validate(response.json())
            except (ValueError, ValidationError) as exc:
                raise BadGatewayError(
                    "the issuer's discovery document has no authorization or token endpoint"
                ) from exc
            self._fetched = time.monotonic()
        return self._metadata

    async def authorization_url(self, *, redirect_uri: str, state: str, pkce: Pkce) -> str:
        """Where to send the browser to sign in."""
        meta = await self.metadata()
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            **self.settings.authorize_params,
        }
        separator = "&" if "?" in meta.authorization_endpoint else "?"
        return meta.authorization_endpoint + separator + urlencode(params)

    async def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> TokenResponse:
        """Trade the authorization code for tokens."""
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> TokenResponse:
        """New tokens from a refresh token (401 InvalidTokenError when the issuer refuses)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def _token(self, form: dict[str, str]) -> TokenResponse:
        meta = await self.metadata()
        secret = self.settings.client_secret
        if secret is None:
            form = {**form, "client_id": self.settings.client_id}
        auth = (
            httpx.BasicAuth(self.settings.client_id, secret.get_secret_value()) if secret else None
        )
        async with backend_call("the issuer", "token"):
            if auth is None:
                response = await self.http.post(meta.token_endpoint, data=form)
            else:
                response = await self.http.post(meta.token_endpoint, data=form, auth=auth)
        if response.status_code in (400, 401):
            raise InvalidTokenError(f"the issuer refused the grant: {_oauth_error(response)}")
        if response.status_code != 200:
            raise BadGatewayError(f"the issuer's token endpoint answered {response.status_code}")
        try:
            return TokenResponse.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise BadGatewayError("the issuer's token response has no access_token") from exc


def _oauth_error(response: httpx.Response) -> str:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = str(body.get("error", f"HTTP {response.status_code}"))
    description = body.get("error_description") or body.get("detail")
    return f"{error} ({description})" if description else error
