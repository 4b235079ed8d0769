"""Where the relay delivers events: an :class:`EventSink` (the gateway in-process, or
:class:`HttpEventSink`: ``POST {gateway}/provenance/events`` with a service token)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import anyio
import httpx

from vre_common.client_credentials import ClientCredentialsToken
from vre_common.clients.datalake import raise_for_problem
from vre_common.errors import VreError
from vre_common.http import backend_call, make_http_client
from vre_common.provenance.events import Event, EventBatch, IngestResult
from vre_common.settings import HttpClientSettings, ProvenanceSettings


class RejectedEventsError(VreError):
    """The gateway refused a batch as invalid (422): retrying the same bytes cannot help."""

    status = 422
    slug = "invalid-input"
    title = "Invalid provenance events"


class EventSink(Protocol):
    """Where the relay delivers events (the gateway, over HTTP or in-process)."""

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        """Store events (idempotent by id); raise on failure, RejectedEventsError if invalid."""
        ...


TokenProvider = Callable[[], Awaitable[str]]


class HttpEventSink:
    """``POST {gateway}/provenance/events`` with a service token from ``token_provider``."""

    def __init__(
        self,
        gateway_url: str,
        token_provider: TokenProvider,
        *,
        http: httpx.AsyncClient | None = None,
        settings: HttpClientSettings | None = None,
        on_unauthorized: Callable[[], None] | None = None,
    ) -> None:
        self.url = gateway_url.rstrip("/") + "/provenance/events"
        self._token = token_provider
        self._on_unauthorized = on_unauthorized
        self._owns_http = http is None
        self._http = http or make_http_client(settings or HttpClientSettings(read_timeout=30.0))

    async def aclose(self) -> None:
        """Close the HTTP client if this sink created it."""
        if self._owns_http:
            await self._http.aclose()

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        body = EventBatch(events=list(events)).model_dump(mode="json")
        headers = {"Authorization": f"Bearer {await self._token()}"}
        async with backend_call("gateway", "provenance_events"):
            response = await self._http.post(self.url, json=body, headers=headers)
        if response.status_code == 422:
            raise RejectedEventsError(response.text[:300])
        if response.status_code == 401 and self._on_unauthorized is not None:
            self._on_unauthorized()  # a fresh token for the next attempt
        if not response.is_success:
            await raise_for_problem(response, "provenance_events")
        return IngestResult.model_validate(response.json())


def http_event_sink(gateway_url: str | None, settings: ProvenanceSettings) -> EventSink | None:
    """The distributed mode's sink: the gateway over HTTP, as the service's IAM client.

    The token comes from ``settings.client`` (client credentials, renewed before it expires
    and after a 401), else from ``service_token_file`` (read at every delivery, so a rotated
    token is picked up) or ``service_token``. None without a gateway URL or any of these
    (nothing is then recorded).
    """
    if gateway_url is None:
        return None
    if settings.client is not None:
        tokens = ClientCredentialsToken(settings.client)
        return HttpEventSink(gateway_url, tokens, on_unauthorized=tokens.invalidate)
    if settings.service_token is None and settings.service_token_file is None:
        return None

    async def token() -> str:
        if settings.service_token_file is not None:
            return (await anyio.Path(settings.service_token_file).read_text()).strip()
        assert settings.service_token is not None
        return settings.service_token.get_secret_value()

    return HttpEventSink(gateway_url, token)
