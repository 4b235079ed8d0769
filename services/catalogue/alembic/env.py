"""Alembic environment of the catalogue (its own tables only).

Search structures that one dialect has (SQLite's FTS5 table, PostgreSQL's indexes) are
compared on that dialect only.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from vre_catalogue.config import CatalogueSettings
from vre_catalogue.storage.schema import FTS_TABLE, ONLY_DIALECT, CatalogueBase
from vre_common.migrations import run_alembic_env


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Keep the SQLite FTS5 table (and its shadow tables) out of comparisons."""
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLE))


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Objects that exist on one dialect only are compared on that dialect only."""
    only = getattr(obj, "info", {}).get(ONLY_DIALECT)
    return not only or only == context.get_context().dialect.name


run_alembic_env(
    CatalogueBase.metadata,
    CatalogueSettings,
    include_name=include_name,
    include_object=include_object,
)
