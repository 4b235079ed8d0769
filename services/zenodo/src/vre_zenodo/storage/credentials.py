"""CredentialStore: users' Zenodo tokens, stored encrypted (encryption is the service's job)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.db import utcnow
from vre_zenodo.models import StoredCredential
from vre_zenodo.storage.schema import CredentialRow


def _model(row: CredentialRow) -> StoredCredential:
    return StoredCredential.model_validate(row, from_attributes=True)


class CredentialStore:
    """One encrypted Zenodo token per user key."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(
        self, owner: str, encrypted: str, zenodo_url: str, verified_at: datetime | None
    ) -> StoredCredential:
        """Insert or replace the token of ``owner``."""
        now = utcnow()
        row = await self._session.get(CredentialRow, owner)
        if row is None:
            row = CredentialRow(
                owner=owner,
                token_encrypted=encrypted,
                zenodo_url=zenodo_url,
                created_at=now,
                updated_at=now,
                verified_at=verified_at,
            )
            self._session.add(row)
        else:
            row.token_encrypted = encrypted
            row.zenodo_url = zenodo_url
            row.updated_at = now
            row.verified_at = verified_at
        await self._session.flush()
        return _model(row)

    async def get(self, owner: str) -> StoredCredential | None:
        """The stored (encrypted) token, if any."""
        row = await self._session.get(CredentialRow, owner)
        return _model(row) if row is not None else None

    async def delete(self, owner: str) -> bool:
        """Forget the token; False if there was none."""
        result = await self._session.execute(
            delete(CredentialRow).where(CredentialRow.owner == owner)
        )
        return bool(getattr(result, "rowcount", 0))
