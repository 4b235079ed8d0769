"""ASGI apps served by a real uvicorn on 127.0.0.1, each in a thread with its own event loop."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import uvicorn

from vre_common.testing import free_port


class ThreadedServer:
    """A uvicorn server for ``app`` on a free loopback port (real sockets, real streaming)."""

    def __init__(self, app: Any, *, lifespan: Literal["on", "off", "auto"] = "auto") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan=lifespan,
            ws="none",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadedServer:
        """Start and wait until it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} took too long to start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ask it to exit and wait."""
        self.server.should_exit = True
        self._thread.join(15)
