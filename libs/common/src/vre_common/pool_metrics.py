"""Connection-pool metrics of every Database in the process, read at scrape time.

``vre_db_pool_connections{database, state}`` (in_use, idle, overflow) and
``vre_db_pool_capacity{database}`` (pool size + max overflow): when in_use reaches the
capacity, requests queue for a connection (and fail after the pool timeout) — the alert
``VREDatabasePoolExhausted`` watches the ratio. Pools without a fixed size (SQLite's) are
not reported.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class PoolCollector(Collector):
    """Collects the pools of the engines registered with :meth:`track`."""

    def __init__(self) -> None:
        self._engines: weakref.WeakValueDictionary[int, AsyncEngine] = weakref.WeakValueDictionary()

    def track(self, engine: AsyncEngine) -> None:
        """Report this engine's pool while the engine lives."""
        self._engines[id(engine)] = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connections = GaugeMetricFamily(
            "vre_db_pool_connections",
            "Connections of a database pool by state",
            labels=["database", "state"],
        )
        capacity = GaugeMetricFamily(
            "vre_db_pool_capacity",
            "Most connections a pool hands out at once (pool size + max overflow)",
            labels=["database"],
        )
        for engine in list(self._engines.values()):
            pool = engine.sync_engine.pool
            if not isinstance(pool, QueuePool):
                continue
            name = engine.url.database or "?"
            size = pool.size()
            in_use = pool.checkedout()
            connections.add_metric([name, "in_use"], in_use)
            connections.add_metric([name, "idle"], pool.checkedin())
            connections.add_metric([name, "overflow"], max(pool.overflow(), 0))
            capacity.add_metric([name], size + max(pool._max_overflow, 0))
        yield connections
        yield capacity


POOLS = PoolCollector()
REGISTRY.register(POOLS)
