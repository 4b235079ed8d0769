"""The audit log in SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vre_gateway.storage.records import AuditRecord
from vre_gateway.storage.schema import AuditRow


class AuditStore:
    """Appends and pages audit rows (in the request's transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append_many(self, records: Sequence[AuditRecord]) -> None:
        """Add rows in order (``id`` is ignored: the database numbers rows)."""
        self.session.add_all([AuditRow(**r.model_dump(exclude={"id"})) for r in records])
        await self.session.flush()

    async def page(self, project_id: str, *, before: int | None, limit: int) -> list[AuditRecord]:
        """A project's rows, newest first, older than ``before``."""
        stmt = select(AuditRow).where(AuditRow.project_id == project_id)
        if before is not None:
            stmt = stmt.where(AuditRow.id < before)
        rows = await self.session.scalars(stmt.order_by(AuditRow.id.desc()).limit(limit))
        return [AuditRecord.model_validate(r) for r in rows]
