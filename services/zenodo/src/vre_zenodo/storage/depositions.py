"""DepositionStore: depositions made through the VRE and the upload state of each file."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from vre_common.db import utcnow
from vre_common.jobs import JobStore
from vre_zenodo.models import DepositionFile, DepositionFileState, DepositionState, StoredDeposition
from vre_zenodo.storage.schema import DepositionFileRow, DepositionRow


class NewDepositionFile(BaseModel):
    """A Data Lake file to put in a deposition."""

    scope: str
    name: str
    filename: str
    size: int
    md5: str | None


class StoredDepositionFile(DepositionFile):
    """A deposition file with its position and DID parts."""

    position: int
    scope: str
    name: str


class StoredDepositionWithFiles(StoredDeposition):
    """A stored deposition with its files' internal fields."""

    stored_files: list[StoredDepositionFile]


def _model(row: DepositionRow) -> StoredDepositionWithFiles:
    files = [
        StoredDepositionFile(
            position=f.position,
            scope=f.scope,
            name=f.name,
            did=f"{f.scope}:{f.name}",
            filename=f.filename,
            bytes=f.size,
            md5=f.md5,
            bytes_done=f.bytes_done,
            state=f.state,
            error=f.error,
            doi_written=f.doi_written,
        )
        for f in row.files
    ]
    return StoredDepositionWithFiles(
        id=row.id,
        state=row.state,
        owner=row.owner_name,
        owner_key=row.owner,
        zenodo_id=row.zenodo_id,
        record_id=row.record_id,
        bucket_url=row.bucket_url,
        html_url=row.html_url,
        doi=row.doi,
        concept_doi=row.concept_doi,
        title=row.title,
        metadata=dict(row.metadata_ or {}),
        sources=list(row.sources or []),
        run_id=row.run_id,
        software_id=row.software_id,
        previous_id=row.previous_id,
        replace_files=row.replace_files,
        files=[DepositionFile.model_validate(f.model_dump()) for f in files],
        stored_files=files,
        warnings=list(row.warnings or []),
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        published_at=row.published_at,
    )


class DepositionStore(JobStore[DepositionRow, StoredDepositionWithFiles]):
    """Depositions by id, each owned by one user key; the job is the upload of their files
    (a deposition left uploading becomes incomplete, its uploaded files kept)."""

    row = DepositionRow
    active_states = ("uploading",)
    load = (selectinload(DepositionRow.files),)

    def to_model(self, row: DepositionRow) -> StoredDepositionWithFiles:
        return _model(row)

    def interrupted_values(self) -> dict[str, Any]:
        return self.interrupted(
            "incomplete",
            "the zenodo service stopped during the upload; retry it with "
            "POST /depositions/{id}/upload (files already uploaded are kept)",
            stamp="updated_at",
        )

    async def interrupt_parts(self, ids: Sequence[Any]) -> None:
        await self.fail_parts(
            DepositionFileRow.deposition_id,
            ids,
            active="uploading",
            error="interrupted: the service stopped during the upload",
        )

    async def create(
        self,
        *,
        owner: str,
        owner_name: str,
        zenodo_id: int,
        bucket_url: str | None,
        html_url: str | None,
        title: str | None,
        metadata: dict[str, Any],
        sources: list[str],
        run_id: str | None,
        software_id: str | None,
        previous_id: str | None,
        replace_files: bool,
        files: Sequence[NewDepositionFile],
        concept_doi: str | None = None,
    ) -> StoredDepositionWithFiles:
        """A deposition whose files are about to be uploaded."""
        now = utcnow()
        row = DepositionRow(
            id=str(uuid.uuid4()),
            owner=owner,
            owner_name=owner_name,
            state="uploading",
            zenodo_id=zenodo_id,
            record_id=None,
            bucket_url=bucket_url,
            html_url=html_url,
            doi=None,
            concept_doi=concept_doi,
            title=title,
            metadata_=metadata,
            sources=sources,
            run_id=run_id,
            software_id=software_id,
            previous_id=previous_id,
            replace_files=replace_files,
            warnings=[],
            error=None,
            created_at=now,
            updated_at=now,
            files=[
                DepositionFileRow(
                    position=i,
                    scope=f.scope,
                    name=f.name,
                    filename=f.filename,
                    size=f.size,
                    md5=f.md5,
                    bytes_done=0,
                    state="pending",
                    doi_written=False,
                )
                for i, f in enumerate(files)
            ],
        )
        self.session.add(row)
        await self.session.flush()
        return _model(row)

    async def find_draft(self, owner: str, zenodo_id: int) -> StoredDepositionWithFiles | None:
        """The owner's live (not discarded) deposition of a Zenodo deposition id, if any."""
        row = (
            await self.session.execute(
                select(DepositionRow)
                .where(
                    DepositionRow.owner == owner,
                    DepositionRow.zenodo_id == zenodo_id,
                    DepositionRow.state != "discarded",
                )
                .options(selectinload(DepositionRow.files))
                .limit(1)
            )
        ).scalar_one_or_none()
        return _model(row) if row is not None else None

    async def set_state(
        self,
        deposition_id: str,
        state: DepositionState,
        *,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Move the deposition to ``state`` (the error is replaced)."""
        await self.session.execute(
            update(DepositionRow)
            .where(DepositionRow.id == deposition_id)
            .values(state=state, error=error, updated_at=utcnow())
        )

    async def set_metadata(
        self, deposition_id: str, metadata: dict[str, Any], title: str | None
    ) -> None:
        """Record the metadata Zenodo holds now."""
        await self.session.execute(
            update(DepositionRow)
            .where(DepositionRow.id == deposition_id)
            .values(metadata_=metadata, title=title, updated_at=utcnow())
        )

    async def add_warnings(self, deposition_id: str, warnings: list[str]) -> None:
        """Append warnings (kept in order, without duplicates)."""
        row = await self.session.get(DepositionRow, deposition_id)
        if row is not None and warnings:
            row.warnings = list(dict.fromkeys([*(row.warnings or []), *warnings]))
            row.updated_at = utcnow()
            await self.session.flush()

    async def mark_published(
        self,
        deposition_id: str,
        *,
        doi: str | None,
        record_id: int | None,
        concept_doi: str | None,
        html_url: str | None,
        published_at: datetime | None = None,
    ) -> None:
        """Record the publication."""
        now = utcnow()
        await self.session.execute(
            update(DepositionRow)
            .where(DepositionRow.id == deposition_id)
            .values(
                state="published",
                doi=doi,
                record_id=record_id,
                concept_doi=concept_doi,
                html_url=html_url,
                error=None,
                updated_at=now,
                published_at=published_at or now,
            )
        )

    async def set_file(
        self,
        deposition_id: str,
        position: int,
        *,
        state: DepositionFileState | None = None,
        bytes_done: int | None = None,
        error: str | None = None,
        doi_written: bool | None = None,
        md5: str | None = None,
    ) -> None:
        """Record a file's upload state, progress, md5 (if it had none) or DOI write-back."""
        await self.set_part(
            DepositionFileRow.deposition_id,
            deposition_id,
            position,
            state=state,
            error=error,
            bytes_done=bytes_done,
            doi_written=doi_written,
            md5=md5,
        )
