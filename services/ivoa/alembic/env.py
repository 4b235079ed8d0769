"""Alembic environment of the ivoa service (its own tables only)."""

from __future__ import annotations

from vre_common.migrations import run_alembic_env
from vre_ivoa.config import IvoaSettings
from vre_ivoa.storage.schema import IvoaBase

run_alembic_env(IvoaBase.metadata, IvoaSettings)
