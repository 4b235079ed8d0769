"""Alembic environment of the catalogue: one code path for the app, the CLI and the tests.

The app passes its own connection in ``config.attributes["connection"]`` (this is how an
in-memory SQLite database gets migrated); the CLI reads the URL from ``-x url=…``, from
``sqlalchemy.url``, or from the service's settings (``VRE_CATALOGUE_DATABASE__URL``).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from vre_catalogue.config import CatalogueSettings
from vre_catalogue.storage.schema import FTS_TABLE, ONLY_DIALECT, CatalogueBase
from vre_common.db import sync_url

config = context.config
target_metadata = CatalogueBase.metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Keep the SQLite FTS5 table (and its shadow tables) out of comparisons."""
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLE))


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Objects that exist on one dialect only are compared on that dialect only."""
    only = getattr(obj, "info", {}).get(ONLY_DIALECT)
    return not only or only == context.get_context().dialect.name


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    return sync_url(url or CatalogueSettings().database.url)


if context.is_offline_mode():
    raise SystemExit("the catalogue's migrations run online only")

shared = config.attributes.get("connection")
if shared is not None:
    _run(shared)
else:
    engine = create_engine(_url(), poolclass=NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()
