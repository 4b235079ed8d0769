"""ServiceCatalog: the VO services a deployment offers, their VOSI metadata (cached), a text
search over services and tables (the gateway's unified search), and registry discovery."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from vre_common.errors import InvalidInputError
from vre_ivoa.backends.base import RegistryPort, VoServicePort
from vre_ivoa.config import CacheSettings, RegistrySettings, VoServiceConfig
from vre_ivoa.errors import RegistryNotConfiguredError, UnknownServiceError
from vre_ivoa.models import (
    Capability,
    RegistryResource,
    VoService,
    VoServiceDetail,
    VoTable,
    VoTableList,
)

T = TypeVar("T")


class TtlCache:
    """A small in-memory cache with a time to live; one loader at a time per key."""

    def __init__(self, settings: CacheSettings) -> None:
        self.ttl = settings.ttl_seconds
        self.max_entries = settings.max_entries
        self._values: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def peek(self, key: str) -> Any | None:
        """The cached value if fresh (no loading)."""
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    async def get(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value, or ``load()`` stored for ``ttl`` seconds (failures not cached)."""
        hit = self.peek(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self.peek(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
            value = await load()
            self._values[key] = (time.monotonic() + self.ttl, value)
            self._values.move_to_end(key)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)
            return value


def _public(config: VoServiceConfig) -> VoService:
    return VoService(
        name=config.name,
        type=config.type,
        url=config.url,
        title=config.title,
        description=config.description,
        ivoid=config.ivoid,
        protected=config.credentials is not None,
    )


def _matches(words: list[str], *texts: str | None) -> bool:
    haystack = " ".join(t for t in texts if t).lower()
    return all(w in haystack for w in words)


class ServiceCatalog:
    """The configured VO services and what they say about themselves."""

    def __init__(
        self,
        *,
        configs: list[VoServiceConfig],
        clients: Mapping[str, VoServicePort],
        cache: CacheSettings,
        registry: RegistryPort | None,
        registry_settings: RegistrySettings,
    ) -> None:
        self._configs = {c.name: c for c in configs}
        self._clients = clients
        self._cache = TtlCache(cache)
        self._registry = registry
        self._registry_settings = registry_settings

    # ------------------------------------------------------------------ lookup

    def config(self, name: str, *, field: list[str] | None = None) -> VoServiceConfig:
        """A configured service; unknown: 404, or 422 at ``field`` when it came in a body."""
        config = self._configs.get(name)
        if config is not None:
            return config
        known = ", ".join(sorted(self._configs)) or "none configured"
        detail = f"no VO service named {name!r} (known: {known})"
        if field is not None:
            raise InvalidInputError(
                detail, errors=[{"loc": field, "msg": "unknown VO service", "type": "value_error"}]
            )
        raise UnknownServiceError(detail)

    def client(self, name: str) -> VoServicePort:
        """The client of a configured service."""
        return self._clients[self.config(name).name]

    def services(self) -> list[VoService]:
        """Every configured service."""
        return [_public(c) for c in self._configs.values()]

    # ------------------------------------------------------------------ VOSI

    async def capabilities(self, name: str) -> list[Capability]:
        """VOSI capabilities (cached)."""
        client = self.client(name)
        return await self._cache.get(f"capabilities:{name}", client.capabilities)

    async def detail(self, name: str) -> VoServiceDetail:
        """A service with its capabilities; an unreachable service is reported, not raised."""
        config = self.config(name)
        base = _public(config).model_dump()
        try:
            capabilities = await self.capabilities(name)
        except Exception as exc:  # shown to the caller: the service is configured but failing
            detail = getattr(exc, "detail", None) or type(exc).__name__
            return VoServiceDetail(**base, capabilities_error=str(detail))
        return VoServiceDetail(**base, capabilities=capabilities)

    async def tables(self, name: str, query: str | None = None) -> VoTableList:
        """VOSI tables (cached), those whose name or description contains every word."""
        client = self.client(name)
        tables: list[VoTable] = await self._cache.get(f"tables:{name}", client.tables)
        words = (query or "").lower().split()
        if words:
            tables = [t for t in tables if _matches(words, t.name, t.description)]
        return VoTableList(service=name, items=tables)

    # ------------------------------------------------------------------ search

    async def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Services and tables whose name, title or description contain every word.

        Tables come from the VOSI cache, loaded for services not yet cached; a service that
        fails to answer is skipped (the gateway's search bounds the whole source in time).
        """
        words = query.lower().split()
        hits: list[dict[str, Any]] = []
        for config in self._configs.values():
            if _matches(words, config.name, config.title, config.description, config.url):
                title = config.title or config.name
                hits.append(
                    {"kind": "service", "service": config.name, "title": title,
                     "type": config.type}
                )  # fmt: skip

        async def tables_of(name: str) -> list[VoTable]:
            try:
                return (await self.tables(name)).items
            except Exception:  # a failing service contributes no tables
                return []

        taps = [c.name for c in self._configs.values() if c.type == "tap"]
        for name, tables in zip(taps, await asyncio.gather(*map(tables_of, taps)), strict=True):
            for table in tables:
                if _matches(words, table.name, table.description):
                    hits.append({"kind": "table", "service": name, "title": table.name,
                                 "description": table.description})  # fmt: skip
        return hits[:limit]

    async def discover(
        self,
        *,
        keywords: list[str],
        service_type: str | None,
        waveband: str | None,
        limit: int | None,
    ) -> list[RegistryResource]:
        """Resources of the configured registry (RegTAP)."""
        if self._registry is None:
            raise RegistryNotConfiguredError(
                "no IVOA registry is configured (VRE_IVOA_REGISTRY__URL: a RegTAP service)"
            )
        size = min(limit or self._registry_settings.max_results,
                   self._registry_settings.max_results)  # fmt: skip
        return await self._registry.search(
            keywords=keywords, service_type=service_type, waveband=waveband, limit=size
        )
