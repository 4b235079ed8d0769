"""Alembic environment of the datalake (its provenance outbox only)."""

from __future__ import annotations

from vre_common.migrations import run_alembic_env
from vre_datalake.config import DatalakeSettings
from vre_datalake.outbox import METADATA

run_alembic_env(METADATA, DatalakeSettings)
