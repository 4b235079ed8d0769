"""ZenodoEvents: provenance of imports (``import``) and publications (``publish``).

Each event is written to the ``provenance_outbox`` table in the same transaction as the
change it describes (the import's final state, the deposition's publication), so both commit
or neither does; an :class:`OutboxRelay` delivers the rows to the gateway (in-process sink
when mounted, ``POST /provenance/events`` over HTTP otherwise). Without a sink nothing is
recorded.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import Database
from vre_common.provenance import (
    Event,
    ServiceEvents,
)
from vre_common.settings import ProvenanceSettings
from vre_zenodo.storage.schema import PROVENANCE_OUTBOX

log = structlog.get_logger("vre.zenodo.provenance")


class ZenodoEvents(ServiceEvents):
    """Records import and publish events with the service's changes, and relays them."""

    def __init__(self, *, db: Database, settings: ProvenanceSettings) -> None:
        super().__init__(
            table=PROVENANCE_OUTBOX,
            sessionmaker=db.sessionmaker,
            enabled=settings.enabled,
            relay_interval_seconds=settings.relay_interval_seconds,
        )

    async def record(self, session: AsyncSession, event: Event) -> None:
        """Add ``event`` to the session's transaction (nothing when inactive)."""
        await self.add(session, event)
