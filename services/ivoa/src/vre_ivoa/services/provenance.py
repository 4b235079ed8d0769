"""IvoaEvents: provenance of queries whose results were written into the Data Lake.

An event is written to the ``provenance_outbox`` table in the same transaction as the job's
COMPLETED phase (both commit or neither does) and relayed to the gateway. Its kind is
``query``: it *used* the VO service (its IVOA identifier, else its URL) and the uploaded
table's DID, and *generated* the result DID; its attributes carry the query id, the service,
its type, the query text, the row count and the format.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import Database
from vre_common.provenance import Event, ServiceEvents
from vre_common.settings import ProvenanceSettings
from vre_ivoa.storage.schema import PROVENANCE_OUTBOX


class IvoaEvents(ServiceEvents):
    """Records query events with the job's completion, and relays them."""

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
