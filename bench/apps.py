"""App factories for the gateway benchmarks, started by uvicorn in their own processes.

The signing key comes from ``VRE_BENCH_KEY`` (a JWK file), so the load generator's token
validates in every process. The service route stands for "get one DID's metadata": an
authenticated GET answering a ~330-byte JSON document.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from joserfc.jwk import RSAKey

from vre_common.app import create_base_app
from vre_common.deps import CurrentUser
from vre_common.link import GatewayLink, link_service
from vre_common.testing import TestIssuer
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app

DOC = {
    "scope": "user.alice",
    "name": "run-00042/events.root",
    "type": "FILE",
    "bytes": 1048576,
    "adler32": "0cc737eb",
    "md5": "b6d81b360a5672d80c27430f39153e2c",
    "account": "alice",
    "created_at": "2026-11-25T10:00:00Z",
    "metadata": {"datatype": "raw", "run_number": 42, "project": "atlas-dm"},
}


def _issuer() -> TestIssuer:
    issuer = TestIssuer()
    issuer.key = RSAKey.import_key(json.loads(Path(os.environ["VRE_BENCH_KEY"]).read_text()))
    return issuer


def service(link: GatewayLink | None = None) -> FastAPI:
    """The service alone (the baseline), or linked to a mounting gateway."""
    app = create_base_app(service="datalake", title="bench", description="bench")
    link_service(app, link or GatewayLink(validator=_issuer().validator()))

    @app.get("/dids/{scope}/{name}")
    async def get_did(scope: str, name: str, user: CurrentUser) -> dict[str, Any]:
        return {**DOC, "scope": scope, "name": name}

    return app


def embedded() -> FastAPI:
    """The gateway with the service mounted in-process."""
    settings = GatewaySettings(rate_limit={"enabled": False})
    factory = Factory(settings, validator=_issuer().validator())
    return create_app(settings, factory=factory, service_apps={"datalake": service(factory.link)})


def distributed() -> FastAPI:
    """The gateway proxying to the service process at ``VRE_BENCH_UPSTREAM``."""
    settings = GatewaySettings(
        mode="distributed",
        service_urls={"datalake": os.environ["VRE_BENCH_UPSTREAM"]},
        rate_limit={"enabled": False},
    )
    return create_app(settings, validator=_issuer().validator())
