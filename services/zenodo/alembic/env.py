"""Alembic environment of the zenodo service (its own tables only)."""

from __future__ import annotations

from vre_common.migrations import run_alembic_env
from vre_zenodo.config import ZenodoSettings
from vre_zenodo.storage.schema import ZenodoBase

run_alembic_env(ZenodoBase.metadata, ZenodoSettings)
