"""A service's own token from a real OpenID provider (client credentials), and the provenance
relay posting events with it to a real gateway — the deployments' default, with no token
copied into a Secret and no refresher beside the pod.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from vre_common.auth import OidcKeySource, TokenValidator
from vre_common.client_credentials import ClientCredentialsToken
from vre_common.errors import BackendUnavailableError, BadGatewayError, VreError
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id
from vre_common.provenance.sink import HttpEventSink, http_event_sink
from vre_common.settings import AuthSettings, ClientCredentialsSettings, ProvenanceSettings
from vre_common.testing import app_client, free_port

CLIENT_ID, CLIENT_SECRET = "vre-test", "vre-test-secret"  # registered in tests/oidc/server.mjs


def client_settings(provider: Any, **changes: Any) -> ClientCredentialsSettings:
    return ClientCredentialsSettings(
        token_url=provider.token_url,
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        audience="vre",
    ).model_copy(update=changes)


async def test_tokens_are_valid_kept_and_renewed(oidc_provider: Any) -> None:
    auth = AuthSettings(issuers=[oidc_provider.issuer], audience="vre")
    keys = OidcKeySource(auth)
    tokens = ClientCredentialsToken(client_settings(oidc_provider))
    first = await tokens()
    try:
        principal = await TokenValidator(auth, keys).validate(first)
    finally:
        await keys.aclose()
    assert principal.client_id == CLIENT_ID
    assert await tokens() == first  # kept while valid
    assert tokens.fetches == 1
    tokens.invalidate()  # e.g. after a 401
    second = await tokens()
    assert second != first
    assert tokens.fetches == 2
    # a margin longer than the tokens live: every call fetches a fresh one
    eager = ClientCredentialsToken(client_settings(oidc_provider, refresh_margin_seconds=1e6))
    assert await eager() != await eager()
    assert eager.fetches == 2


async def test_refused_and_unreachable_token_endpoints_are_5xx(oidc_provider: Any) -> None:
    wrong = ClientCredentialsToken(
        client_settings(oidc_provider, client_secret=SecretStr("not-the-secret"))
    )
    with pytest.raises(BadGatewayError) as refused:
        await wrong()
    assert CLIENT_ID in refused.value.detail
    assert "invalid_client" in refused.value.detail or "401" in refused.value.detail
    gone = ClientCredentialsToken(
        client_settings(oidc_provider, token_url=f"http://127.0.0.1:{free_port()}/token")
    )
    with pytest.raises(BackendUnavailableError):
        await gone()


async def test_the_relay_posts_events_as_its_client(oidc_provider: Any, tmp_path: Any) -> None:
    from vre_gateway.config import GatewaySettings
    from vre_gateway.config import ProvenanceSettings as GatewayProvenance
    from vre_gateway.main import create_app

    auth = AuthSettings(issuers=[oidc_provider.issuer], audience="vre")
    keys = OidcKeySource(auth)
    gateway = create_app(
        GatewaySettings(
            auth=auth,
            data=tmp_path,
            provenance=GatewayProvenance(ingest_clients=[CLIENT_ID]),
        ),
        validator=TokenValidator(auth, keys),
    )
    settings = ProvenanceSettings(client=client_settings(oidc_provider))
    sink = http_event_sink("http://gateway.invalid", settings)
    assert isinstance(sink, HttpEventSink)  # wired with the client's tokens
    event = Event.create(
        EventKind.UPLOAD,
        f"{oidc_provider.issuer}|{oidc_provider.subject('alice')}",
        service="datalake",
        generated=[did_id("user.alice", "events.dat")],
    )
    async with app_client(gateway) as http:
        tokens = ClientCredentialsToken(settings.client)  # type: ignore[arg-type]
        relay_sink = HttpEventSink(
            str(http.base_url), tokens, http=http, on_unauthorized=tokens.invalidate
        )
        result = await relay_sink.deliver([event])
        assert (result.accepted, result.duplicates) == (1, 0)
        assert (await relay_sink.deliver([event])).duplicates == 1  # at least once, once stored
        # a token the gateway refuses: the sink fails (the outbox retries) and asks for a
        # fresh token, which the next attempt uses
        tokens._token = "not-a-token"  # as if revoked at IAM
        with pytest.raises(VreError) as refused:
            await relay_sink.deliver([event])
        assert refused.value.status == 401
        fetched = tokens.fetches
        assert (await relay_sink.deliver([event])).duplicates == 1
        assert tokens.fetches == fetched + 1
    await keys.aclose()


async def test_kept_fresh_for_synchronous_users(oidc_provider: Any) -> None:
    """keep_fresh fetches at once and again before expiry (here: every second, since the
    margin is longer than the tokens live); `current` always holds the newest."""
    import asyncio

    tokens = ClientCredentialsToken(client_settings(oidc_provider, refresh_margin_seconds=1e6))
    assert tokens.current is None
    task = asyncio.create_task(tokens.keep_fresh())
    try:
        for _ in range(200):
            if tokens.fetches >= 2:
                break
            await asyncio.sleep(0.05)
        assert tokens.fetches >= 2
        assert tokens.current is not None
    finally:
        task.cancel()


async def test_the_datalake_writes_to_storage_with_its_own_token(oidc_provider: Any) -> None:
    """storage.webdav_client: the datalake's storage token comes from IAM, not a static
    string in a Secret; the lifespan keeps it fresh."""
    import asyncio

    from vre_datalake.backends.base import Actor
    from vre_datalake.config import DatalakeSettings, StorageSettings
    from vre_datalake.main import create_app

    settings = DatalakeSettings(
        auth=AuthSettings(issuers=[oidc_provider.issuer], audience="vre"),
        storage=StorageSettings(
            webdav_client=client_settings(oidc_provider, scope="storage.read:/ storage.modify:/")
        ),
    )
    app = create_app(settings)
    async with app_client(app):
        factory = app.state.factory  # built by the lifespan
        for _ in range(200):
            if factory.storage_tokens.current:
                break
            await asyncio.sleep(0.05)
        token = factory.uploads.storage_token(
            Actor(account="alice", scope="user.alice", user_key="iss|alice")
        )
        assert token == factory.storage_tokens.current
        keys = OidcKeySource(settings.auth)
        try:
            principal = await TokenValidator(settings.auth, keys).validate(token)
        finally:
            await keys.aclose()
        assert principal.client_id == CLIENT_ID
        assert principal.has_scope("storage.modify:/")
