"""OAuth 2.0 Device Authorization Grant (RFC 8628): ``vre login`` where the issuer offers it.

The issuer's discovery document must list a ``device_authorization_endpoint`` (INDIGO IAM
does); the user opens the verification URL in any browser, types the code, and the
terminal receives the access token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from vre.errors import VreError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DeviceFlowUnavailableError(VreError):
    """The issuer does not offer the device authorization grant."""


class DeviceFlowError(VreError):
    """The device authorization was refused, expired or failed."""


def discover(issuer: str, http: httpx.Client) -> dict[str, Any]:
    """The issuer's OpenID discovery document."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    answer = http.get(url)
    if answer.status_code != 200:
        raise DeviceFlowUnavailableError(f"{url}: {answer.status_code}")
    return dict(answer.json())


def device_code_token(
    issuer: str,
    client_id: str,
    *,
    scope: str = "openid offline_access",
    notify: Callable[[str, str], None] = lambda url, code: None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Run the device grant at ``issuer`` and return the access token.

    ``notify(verification_url, user_code)`` tells the user where to go.
    """
    with httpx.Client(transport=transport, timeout=30) as http:
        document = discover(issuer, http)
        endpoint = document.get("device_authorization_endpoint")
        if not endpoint:
            raise DeviceFlowUnavailableError(f"{issuer} offers no device authorization grant")
        started = http.post(endpoint, data={"client_id": client_id, "scope": scope})
        if started.status_code != 200:
            raise DeviceFlowError(f"device authorization refused: {started.text[:300]}")
        grant = started.json()
        notify(
            grant.get("verification_uri_complete") or grant["verification_uri"], grant["user_code"]
        )
        interval = float(grant.get("interval", 5))
        deadline = time.monotonic() + float(grant.get("expires_in", 600))
        while time.monotonic() < deadline:
            sleep(interval)
            answer = http.post(
                document["token_endpoint"],
                data={
                    "grant_type": DEVICE_GRANT,
                    "device_code": grant["device_code"],
                    "client_id": client_id,
                },
            )
            body = answer.json() if answer.content else {}
            if answer.status_code == 200 and body.get("access_token"):
                return str(body["access_token"])
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5  # RFC 8628 §3.5
                continue
            raise DeviceFlowError(f"the issuer answered {error or answer.status_code}")
        raise DeviceFlowError("the device code expired before it was approved")
