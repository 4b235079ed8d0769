"""A WebDAV storage for tests: WsgiDAV under cheroot, over TLS, requiring one bearer token.

``python webdav_server.py '<json: root, port, cert, key, token>'``. A small WSGI middleware
checks the token and creates parent folders on PUT, as Data Lake sites (dCache, EOS) do
(plain WsgiDAV answers 409 to a PUT under a missing folder).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from wsgidav.wsgidav_app import WsgiDAVApp

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]


def guard(app: App, root: Path, token: str) -> App:
    """Require ``Authorization: Bearer <token>``; make parent folders before a PUT."""

    def wrapped(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {token}":
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return [b""]
        if environ["REQUEST_METHOD"] == "PUT":
            target = (root / environ["PATH_INFO"].lstrip("/")).resolve()
            if root in target.parents:
                target.parent.mkdir(parents=True, exist_ok=True)
        return app(environ, start_response)

    return wrapped


def main() -> None:
    config = json.loads(sys.argv[1])
    root = Path(config["root"]).resolve()
    dav = WsgiDAVApp(
        {
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": {"*": True}},
            "http_authenticator": {"accept_basic": False, "accept_digest": False},
            "verbose": 1,
            "logging": {"enable_loggers": []},
            "property_manager": True,
            "lock_storage": True,
        }
    )
    server = wsgi.Server(("127.0.0.1", config["port"]), guard(dav, root, config["token"]))
    server.ssl_adapter = BuiltinSSLAdapter(config["cert"], config["key"])
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
