"""CredentialStore: users' REANA tokens, stored encrypted."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import utcnow
from vre_workflows.storage.schema import ReanaCredentialRow


class StoredCredential(BaseModel):
    """A stored REANA token (still encrypted)."""

    owner: str
    server: str
    token_encrypted: str
    reana_user: str | None
    created_at: datetime
    updated_at: datetime


def _model(row: ReanaCredentialRow) -> StoredCredential:
    return StoredCredential.model_validate(row, from_attributes=True)


class CredentialStore:
    """Encrypted REANA tokens by (owner, server). Encryption happens in the service layer."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, owner: str, server: str, encrypted: str, reana_user: str | None) -> None:
        """Insert or replace the token of ``owner`` on ``server``."""
        now = utcnow()
        row = await self._session.get(ReanaCredentialRow, (owner, server))
        if row is None:
            self._session.add(
                ReanaCredentialRow(
                    owner=owner,
                    server=server,
                    token_encrypted=encrypted,
                    reana_user=reana_user,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            row.token_encrypted = encrypted
            row.reana_user = reana_user
            row.updated_at = now
        await self._session.flush()

    async def get(self, owner: str, server: str) -> StoredCredential | None:
        """The stored (encrypted) token, if any."""
        row = await self._session.get(ReanaCredentialRow, (owner, server))
        return _model(row) if row is not None else None

    async def list_all(self, owner: str) -> list[StoredCredential]:
        """Every server the owner registered a token for."""
        result = await self._session.execute(
            select(ReanaCredentialRow)
            .where(ReanaCredentialRow.owner == owner)
            .order_by(ReanaCredentialRow.server)
        )
        return [_model(r) for r in result.scalars()]

    async def delete(self, owner: str, server: str) -> bool:
        """Forget a token; False if there was none."""
        result = await self._session.execute(
            delete(ReanaCredentialRow).where(
                ReanaCredentialRow.owner == owner, ReanaCredentialRow.server == server
            )
        )
        return bool(getattr(result, "rowcount", 0))
