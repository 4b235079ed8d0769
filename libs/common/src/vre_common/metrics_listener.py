"""/metrics on a port of its own, so that what is public (the API port) never shows it.

Deployments set ``METRICS_PORT`` (9100 in k8s/ and docker-compose.yml): Prometheus scrapes
that port inside the cluster, while the Ingress routes only the API port. Without it (the
embedded mode, tests) ``/metrics`` stays on the API port. A process-level deployment choice,
read from the environment like uvicorn's own ``FORWARDED_ALLOW_IPS``, so every service gets
it the same way without a setting in each.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import start_http_server

from vre_common.metrics import registry

_lock = threading.Lock()
_started: dict[int, object] = {}


def metrics_port() -> int | None:
    """The port asked for by ``METRICS_PORT``, or None; a bad value stops the start."""
    raw = os.environ.get("METRICS_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"METRICS_PORT must be a port number, not {raw!r}")
    return int(raw)


def serve_metrics_separately() -> bool:
    """Start the metrics listener once per process when ``METRICS_PORT`` is set.

    Returns whether it runs (then the app must not serve ``/metrics`` itself).
    """
    port = metrics_port()
    if port is None:
        return False
    with _lock:
        if port not in _started:
            address = os.environ.get("METRICS_ADDRESS", "0.0.0.0")  # noqa: S104 - in-cluster scrape
            _started[port] = start_http_server(port, addr=address, registry=registry())
    return True
