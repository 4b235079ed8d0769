"""Settings of an embedded gateway built by a test (its services mounted by the test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vre_common.testing import TestIssuer, free_port
from vre_gateway.config import GatewaySettings


def embedded_settings(folder: Path, issuer: TestIssuer, **overrides: Any) -> GatewaySettings:
    """Embedded mode on a free loopback port, with the data and a SQLite database in
    ``folder``, tokens of ``issuer``, no rate limit and the projects search source."""
    values: dict[str, Any] = {
        "mode": "embedded",
        "host": "127.0.0.1",
        "port": free_port(),
        "data": folder,
        "auth": issuer.auth_settings(),
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'gateway.db'}"},
        "rate_limit": {"enabled": False},
        "search": {"sources": ["projects"]},
        **overrides,
    }
    return GatewaySettings.model_validate(values)
