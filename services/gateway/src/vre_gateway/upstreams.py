"""Distributed mode: the services behind the gateway, over HTTP.

One :class:`ServiceProxy` per service forwards its requests; one small HTTP client asks the
services for their ``/readyz`` (the gateway's readiness lists them) and their OpenAPI
documents (fetched until all are in: services may start after the gateway). Everything is
closed by :meth:`Upstreams.aclose` (the gateway's lifespan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from vre_common.readiness import DependencyState, export_dependency_states
from vre_gateway.config import GatewaySettings
from vre_gateway.proxy import ServiceProxy


class Upstreams:
    """The proxies of the distributed mode, their readiness and their documents."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.proxies = {
            name: ServiceProxy(
                name,
                url,
                buffer_bytes=settings.proxy_buffer_bytes,
                connect_timeout=settings.proxy_connect_timeout,
                read_timeout=settings.proxy_read_timeout,
            )
            for name, url in settings.service_urls.items()
            if settings.mode == "distributed"
        }
        self.specs: dict[str, dict[str, Any]] = {}
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(3.0))
        self._loader: asyncio.Task[None] | None = None

    def start(self, on_spec: Callable[[], None]) -> None:
        """Fetch the services' documents in the background; ``on_spec`` after each new one."""
        if self.proxies:
            self._loader = asyncio.create_task(self._load_specs(on_spec))

    async def ready(self) -> list[DependencyState]:
        """Each service's own answer, its dependencies prefixed with its name (all optional:
        another process being down does not make the gateway unready)."""
        states: list[DependencyState] = []
        for name, proxy in self.proxies.items():
            remote = await self._remote_ready(name, proxy.base_url)
            export_dependency_states(remote)
            states.extend(remote)
        return states

    async def aclose(self) -> None:
        """Stop fetching documents, close the proxies' pools and the HTTP client."""
        if self._loader is not None:
            self._loader.cancel()
        for proxy in self.proxies.values():
            await proxy.aclose()
        await self._http.aclose()

    async def _load_specs(self, on_spec: Callable[[], None]) -> None:
        delay = 0.5
        while len(self.specs) < len(self.proxies):
            for name, proxy in self.proxies.items():
                if name in self.specs:
                    continue
                try:
                    response = await self._http.get(proxy.base_url + "/openapi.json")
                    if response.status_code == 200:
                        self.specs[name] = response.json()
                        on_spec()
                except (httpx.HTTPError, ValueError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _remote_ready(self, name: str, base_url: str) -> list[DependencyState]:
        try:
            response = await self._http.get(base_url + "/readyz")
            data = response.json()
            deps = [DependencyState(**d) for d in data.get("dependencies", [])]
            return [
                DependencyState(name=name, up=response.status_code == 200, optional=True),
                *(
                    d.model_copy(update={"name": f"{name}.{d.name}", "optional": True})
                    for d in deps
                ),
            ]
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            reason = f"unreachable: {type(exc).__name__}"
            return [DependencyState(name=name, up=False, reason=reason, optional=True)]
