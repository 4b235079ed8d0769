"""Units of work on the service's database, for requests and background jobs alike."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import Database


def transaction(db: Database) -> AbstractAsyncContextManager[AsyncSession]:
    """``Database.session()`` as a context manager: committed when the block ends, rolled
    back on error, a database outage raised as a 503 error."""
    return asynccontextmanager(db.session)()
