"""The embedded mode on several processes: front processes before the primary one.

One Python process carries one core at most, and the embedded VRE's busiest requests are the
Data Lake's (listings, metadata, uploads: three quarters of a researcher's calls in the load
test). So `vre up` on a machine with more than one core runs

- the **primary** process: the whole embedded VRE as on one core (every service, the
  background jobs and runs, the web pages, the development issuer), listening on a Unix
  socket only;
- one or more **front** processes, sharing the public port: each serves ``/datalake``
  itself (the datalake service with this process's own link to the gateway's database and
  validator, and its own provenance outbox file) and forwards every other request, unchanged,
  to the primary over its socket.

State that lives in one process's memory (the run queue, job tasks, sign-in codes) is thus
only ever in the primary's; the datalake keeps none that another request needs. The rate
limit is the fronts' (the primary's socket is reached through them only); metrics are shared
through files (``PROMETHEUS_MULTIPROC_DIR``), so ``/metrics`` counts each request once.

A front is started by the primary as ``python -m vre_gateway.front`` with its
:class:`FrontConfig` on standard input (it holds Rucio's service password) and the public
socket inherited.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from vre_common.app import create_base_app
from vre_common.link import attach_link
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.proxy import ServiceProxy

PRIMARY_HOST = "vre-primary"  # names the primary in URLs; the socket is what is dialled


class FrontConfig(BaseModel):
    """What a front process needs beyond the environment it inherits."""

    settings: dict[str, Any]
    """The primary's :class:`GatewaySettings` (before it turned its rate limit off), with the
    issuers its validator trusts (the development issuer's among them)."""
    rucio: dict[str, Any]
    """The embedded Rucio: url, service account, username, password, RSE names."""
    primary_socket: str
    fd: int
    index: int


def create_front_app(
    settings: GatewaySettings,
    factory: Factory,
    services: dict[str, FastAPI],
    primary_socket: str,
) -> FastAPI:
    """The public face of a front process: ``services`` mounted (built with
    ``factory.link``), everything else forwarded to the primary's ``primary_socket``."""
    from vre_gateway.main import install_limits

    primary = ServiceProxy(
        "primary",
        f"http://{PRIMARY_HOST}",
        buffer_bytes=settings.proxy_buffer_bytes,
        connect_timeout=settings.proxy_connect_timeout,
        # No limit on silence: the primary is this VRE itself, not a backend (its own calls
        # to backends are bounded), and a followed log stays quiet while a step prints
        # nothing. A primary that is gone is refused at once (503).
        read_timeout=None,
        unix_socket=primary_socket,
        preserve_host=True,
        counted_upstream=True,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(factory.aclose)
            stack.push_async_callback(primary.aclose)
            for sub in services.values():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
            yield

    app = create_base_app(
        service="gateway",
        title="VRE front",
        description="Serves the Data Lake, forwards the rest to the primary process.",
        lifespan=lifespan,
        metrics=False,  # /metrics is the primary's (it reads every process's)
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the merged document is the primary's
    )
    attach_link(app, factory.link)
    for name, sub in services.items():
        app.mount(f"/{name}", sub, name=name)
    # /healthz stays this process's own liveness; every other path is the primary's
    app.mount("/", primary, name="primary")
    install_limits(app, settings)
    return app


def serve(config: FrontConfig) -> None:
    """Build this front's app from ``config`` and serve the inherited public socket."""
    import uvicorn

    from vre_common.auth import build_validator
    from vre_common.logging import configure_logging
    from vre_datalake.main import create_app as datalake_app
    from vre_gateway.embedded import front_datalake_settings

    settings = GatewaySettings(**config.settings)
    configure_logging(settings.log_level)
    factory = Factory(settings, validator=build_validator(settings.auth))
    datalake = datalake_app(
        front_datalake_settings(settings, config.rucio, config.index), link=factory.link
    )
    app = create_front_app(settings, factory, {"datalake": datalake}, config.primary_socket)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5
        )
    )
    server.run(sockets=[inherited_socket(config.fd)])


def inherited_socket(fd: int) -> socket.socket:
    """The public socket the primary bound, from its descriptor.

    Not uvicorn's ``fd=``: it takes any inherited socket for a Unix one, so asyncio leaves
    Nagle's algorithm on the TCP connections it accepts, and a response written in two parts
    waits for the client's delayed ACK (40 ms on Linux). A socket built from the descriptor
    knows its own family, and asyncio sets TCP_NODELAY as on any TCP server.
    """
    return socket.socket(fileno=fd)


def _die_with_parent() -> None:
    """Ask the kernel to stop this process when the primary dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def main() -> None:
    """``python -m vre_gateway.front``: the config on stdin, then serve until signalled."""
    _die_with_parent()
    config = FrontConfig.model_validate(json.loads(sys.stdin.read()))
    sys.stdin.close()
    os.set_inheritable(config.fd, False)
    if not Path(config.primary_socket).exists():
        raise SystemExit(f"the primary's socket {config.primary_socket} is gone")
    serve(config)


if __name__ == "__main__":
    main()
