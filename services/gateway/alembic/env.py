"""Alembic environment of the gateway: one code path for the app, the CLI and the tests.

The app passes its own connection in ``config.attributes["connection"]`` (this is how an
in-memory SQLite database gets migrated); the CLI reads the URL from ``-x url=…``, from
``sqlalchemy.url``, or from the gateway's settings (``VRE_DATABASE__URL``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from vre_common.db import sync_url
from vre_gateway.config import GatewaySettings
from vre_gateway.storage.schema import GatewayBase

config = context.config
target_metadata = GatewayBase.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    return sync_url(url or GatewaySettings().database.url)


if context.is_offline_mode():
    raise SystemExit("the gateway's migrations run online only")

shared = config.attributes.get("connection")
if shared is not None:
    _run(shared)
else:
    engine = create_engine(_url(), poolclass=NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()
