"""A service's own access token from IAM: the OAuth 2.0 client credentials grant (RFC 6749 §4.4).

Used where a service calls another as itself — the provenance relay posting events to the
gateway — so that no long-lived token has to be copied into a Secret and no refresher has
to run beside the pod: the token is fetched when first needed, kept until shortly before it
expires, and fetched again after a 401 (IAM rotated its keys, the token was revoked).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import structlog

from vre_common.errors import BadGatewayError, VreError
from vre_common.http import backend_call
from vre_common.settings import ClientCredentialsSettings

log = structlog.get_logger("vre.client_credentials")


class ClientCredentialsToken:
    """Hands out a current access token for one client (one fetch at a time)."""

    def __init__(
        self, settings: ClientCredentialsSettings, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self._http = http
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    @property
    def current(self) -> str | None:
        """The last token fetched (for callers that cannot wait; see :meth:`keep_fresh`)."""
        return self._token

    async def keep_fresh(self, *, retry_seconds: float = 10.0) -> None:
        """Fetch now, then again shortly before each token expires; runs until cancelled.

        For synchronous users of :attr:`current` (the datalake's storage writes). A failed
        fetch is logged and retried after ``retry_seconds``; the old token stays current.
        """
        while True:
            try:
                await self()
                wait = max(self._expires_at - self.settings.refresh_margin_seconds, 0.0)
                wait = max(wait - time.monotonic(), 1.0)
            except VreError as exc:
                log.warning(
                    "client_token_fetch_failed", client=self.settings.client_id, error=exc.detail
                )
                wait = retry_seconds
            await asyncio.sleep(wait)

    def invalidate(self) -> None:
        """Forget the token (the next call fetches one): after a 401 from its audience."""
        self._token = None

    async def __call__(self) -> str:
        """A token valid for at least ``refresh_margin_seconds`` more, if IAM allows it."""
        async with self._lock:
            margin = self.settings.refresh_margin_seconds
            if self._token is None or time.monotonic() >= self._expires_at - margin:
                self._token, lifetime = await self._fetch()
                self._expires_at = time.monotonic() + lifetime
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        s = self.settings
        form = {"grant_type": "client_credentials"}
        if s.scope:
            form["scope"] = s.scope
        if s.audience:
            form["audience"] = s.audience
        auth = (s.client_id, s.client_secret.get_secret_value())
        client = self._http or httpx.AsyncClient(timeout=s.timeout_seconds)
        try:  # transport failures become 503/504/502 (backend_call)
            async with backend_call("iam", "client_credentials"):
                response = await client.post(s.token_url, data=form, auth=auth)
        finally:
            if self._http is None:
                await client.aclose()
        self.fetches += 1
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            reason = body.get("error_description") or body.get("error") or response.text[:200]
            raise BadGatewayError(
                f"the token endpoint refused client {s.client_id!r} "
                f"({response.status_code}): {reason}"
            )
        lifetime = float(body.get("expires_in") or 300)
        return body["access_token"], lifetime
