"""Alembic environment of the gateway (its own tables only)."""

from __future__ import annotations

from vre_common.migrations import run_alembic_env
from vre_gateway.config import GatewaySettings
from vre_gateway.storage.schema import GatewayBase

run_alembic_env(GatewayBase.metadata, GatewaySettings)
