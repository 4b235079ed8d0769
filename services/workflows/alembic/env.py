"""Alembic environment of the workflows service (its own tables only)."""

from __future__ import annotations

from vre_common.migrations import run_alembic_env
from vre_workflows.config import WorkflowsSettings
from vre_workflows.storage.schema import WorkflowsBase

run_alembic_env(WorkflowsBase.metadata, WorkflowsSettings)
