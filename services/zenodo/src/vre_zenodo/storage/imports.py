"""ImportStore: import jobs and the progress of each file."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.orm import selectinload

from vre_common.db import utcnow
from vre_common.jobs import JobStore
from vre_zenodo.models import Import, ImportFile, ImportFileState, ImportState
from vre_zenodo.storage.schema import ImportFileRow, ImportRow

ACTIVE_STATES = ("queued", "running")


class NewImportFile(BaseModel):
    """A file to import."""

    key: str
    did_name: str
    size: int
    md5: str | None
    url: str | None


class StoredImportFile(ImportFile):
    """A file of an import, with what the runner needs."""

    position: int
    did_name: str
    url: str | None


class StoredImport(Import):
    """An import with its files' internal fields."""

    owner_key: str
    dataset_name: str
    stored_files: list[StoredImportFile]

    def public(self) -> Import:
        """The API view."""
        return Import.model_validate(self.model_dump(include=set(Import.model_fields)))


def _model(row: ImportRow) -> StoredImport:
    files = [
        StoredImportFile(
            position=f.position,
            key=f.key,
            did=f"{row.scope}:{f.did_name}",
            did_name=f.did_name,
            bytes=f.size,
            md5=f.md5,
            url=f.url,
            bytes_done=f.bytes_done,
            state=f.state,
            error=f.error,
        )
        for f in row.files
    ]
    return StoredImport(
        id=row.id,
        state=row.state,
        owner=row.owner_name,
        owner_key=row.owner,
        record_id=row.record_id,
        doi=row.doi,
        title=row.title,
        version=row.version,
        license=row.license,
        scope=row.scope,
        dataset=f"{row.scope}:{row.dataset}",
        dataset_name=row.dataset,
        rse=row.rse,
        total_bytes=sum(f.size for f in row.files),
        bytes_done=sum(f.bytes_done for f in row.files),
        files=[ImportFile.model_validate(f.model_dump()) for f in files],
        stored_files=files,
        warnings=list(row.warnings or []),
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class ImportStore(JobStore[ImportRow, StoredImport]):
    """Import jobs by id, each owned by one user key."""

    row = ImportRow
    active_states = ACTIVE_STATES
    load = (selectinload(ImportRow.files),)

    def to_model(self, row: ImportRow) -> StoredImport:
        return _model(row)

    def interrupted_values(self) -> dict[str, Any]:
        return self.interrupted(
            "interrupted",
            "the zenodo service stopped while this import was running; "
            "start the import again (files already imported are kept)",
        )

    async def interrupt_parts(self, ids: Sequence[Any]) -> None:
        await self.fail_parts(
            ImportFileRow.import_id,
            ids,
            active="transferring",
            error="interrupted: the service stopped during the transfer",
        )

    async def create(
        self,
        *,
        owner: str,
        owner_name: str,
        record_id: int,
        doi: str | None,
        title: str,
        version: str | None,
        license: str | None,
        scope: str,
        dataset: str,
        rse: str | None,
        files: Sequence[NewImportFile],
    ) -> StoredImport:
        """A queued import."""
        row = ImportRow(
            id=str(uuid.uuid4()),
            owner=owner,
            owner_name=owner_name,
            state="queued",
            record_id=record_id,
            doi=doi,
            title=title,
            version=version,
            license=license,
            scope=scope,
            dataset=dataset,
            rse=rse,
            warnings=[],
            error=None,
            created_at=utcnow(),
            files=[
                ImportFileRow(
                    position=i,
                    key=f.key,
                    did_name=f.did_name,
                    size=f.size,
                    md5=f.md5,
                    url=f.url,
                    bytes_done=0,
                    state="pending",
                )
                for i, f in enumerate(files)
            ],
        )
        self.session.add(row)
        await self.session.flush()
        return _model(row)

    async def set_state(
        self,
        import_id: str,
        state: ImportState,
        *,
        error: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        """Move the job to ``state`` (running stamps started_at, ends stamp finished_at)."""
        values: dict[str, Any] = {"state": state}
        now = utcnow()
        if state == "running":
            values["started_at"] = now
            values["error"] = None
        elif state in ("completed", "failed", "interrupted"):
            values["finished_at"] = now
            values["error"] = error
        if warnings is not None:
            values["warnings"] = warnings
        await self.session.execute(
            update(ImportRow).where(ImportRow.id == import_id).values(**values)
        )

    async def set_file(
        self,
        import_id: str,
        position: int,
        *,
        state: ImportFileState | None = None,
        bytes_done: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record a file's state and/or progress."""
        await self.set_part(
            ImportFileRow.import_id,
            import_id,
            position,
            state=state,
            error=error,
            bytes_done=bytes_done,
        )
