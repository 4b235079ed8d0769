"""Browser sessions in SQL (tokens arrive here already encrypted)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vre_gateway.storage.schema import WebSessionRow


class WebSessionStore:
    """Adds, reads, updates and removes session rows (in the caller's transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: WebSessionRow) -> None:
        """Store a new session."""
        self.session.add(row)
        await self.session.flush()

    async def get(self, session_id: str) -> WebSessionRow | None:
        """The session, or None."""
        return await self.session.get(WebSessionRow, session_id)

    async def update_tokens(
        self,
        row: WebSessionRow,
        *,
        access_token: str,
        refresh_token: str | None,
        access_expires_at: datetime,
    ) -> None:
        """Keep renewed tokens."""
        row.access_token = access_token
        row.refresh_token = refresh_token
        row.access_expires_at = access_expires_at
        await self.session.flush()

    async def remove(self, session_id: str) -> None:
        """Forget a session (sign-out, or it expired)."""
        await self.session.execute(delete(WebSessionRow).where(WebSessionRow.id == session_id))

    async def purge_expired(self, now: datetime) -> int:
        """Remove expired sessions; how many went."""
        result = await self.session.execute(
            delete(WebSessionRow).where(WebSessionRow.expires_at < now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def count_for(self, user_key: str) -> int:
        """How many sessions a user has (tests, operators)."""
        rows = await self.session.scalars(
            select(WebSessionRow.id).where(WebSessionRow.user_key == user_key)
        )
        return len(rows.all())
