"""SQL storage of harvest jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from vre_catalogue.errors import HarvestJobNotFoundError
from vre_catalogue.models import HarvestIssue, HarvestJob
from vre_catalogue.storage.schema import HarvestJobRow
from vre_catalogue.storage.software import as_utc, utcnow
from vre_common.jobs import JobStore

ACTIVE = ("queued", "running")
MAX_ISSUES = 200


@dataclass
class HarvestCounts:
    """Progress of a running harvest, written back to its job."""

    total: int = 0
    processed: int = 0
    pages: int = 0
    created: int = 0
    versions_added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    issues: list[HarvestIssue] = field(default_factory=list)

    def issue(self, record_id: str, msg: str) -> None:
        """Remember a remark about a record (the first MAX_ISSUES are kept)."""
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(HarvestIssue(record_id=record_id, msg=msg[:500]))


class HarvestStore(JobStore[HarvestJobRow, HarvestJob]):
    """Harvest jobs: creation, progress, outcome, and the incremental watermark."""

    row = HarvestJobRow
    state_column = "status"
    owner_column = "requested_by"
    active_states = ACTIVE

    def to_model(self, row: HarvestJobRow) -> HarvestJob:
        return _job(row)

    def interrupted_values(self) -> dict[str, Any]:
        return {"status": "failed", "detail": "interrupted by a restart", "finished_at": utcnow()}

    async def get(self, job_id: Any, *, owner: str | None = None) -> HarvestJob:
        """A job; HarvestJobNotFoundError if none."""
        job = await super().get(job_id, owner=owner)
        if job is None:
            raise HarvestJobNotFoundError(f"no harvest job {job_id}")
        return job

    async def create(
        self, *, community: str, full: bool, since: datetime | None, until: datetime, by: str
    ) -> HarvestJob:
        """A queued job."""
        row = HarvestJobRow(
            community=community,
            status="queued",
            full=full,
            since=since,
            until=until,
            requested_by=by,
            created_at=utcnow(),
            issues=[],
        )
        self.session.add(row)
        await self.session.flush()
        return _job(row)

    async def recent(self, limit: int) -> list[HarvestJob]:
        """The newest jobs first."""
        rows = await self.session.scalars(
            select(HarvestJobRow).order_by(HarvestJobRow.id.desc()).limit(limit)
        )
        return [_job(r) for r in rows]

    async def active(self, community: str) -> HarvestJob | None:
        """A queued or running job of this community, if any."""
        row = await self.session.scalar(
            select(HarvestJobRow)
            .where(HarvestJobRow.community == community, HarvestJobRow.status.in_(ACTIVE))
            .limit(1)
        )
        return _job(row) if row else None

    async def watermark(self, community: str) -> datetime | None:
        """The upper bound of the last successful harvest: the next one starts there."""
        value = await self.session.scalar(
            select(func.max(HarvestJobRow.until)).where(
                HarvestJobRow.community == community, HarvestJobRow.status == "succeeded"
            )
        )
        return as_utc(value) if value else None

    async def start(self, job_id: int) -> None:
        """Mark a job running."""
        await self.session.execute(
            update(HarvestJobRow)
            .where(HarvestJobRow.id == job_id)
            .values(status="running", started_at=utcnow())
        )

    async def progress(self, job_id: int, counts: HarvestCounts) -> None:
        """Write the counts so far."""
        await self.session.execute(
            update(HarvestJobRow).where(HarvestJobRow.id == job_id).values(**_values(counts))
        )

    async def finish(
        self, job_id: int, counts: HarvestCounts, *, status: str, detail: str | None
    ) -> None:
        """Write the outcome."""
        await self.session.execute(
            update(HarvestJobRow)
            .where(HarvestJobRow.id == job_id)
            .values(status=status, detail=detail, finished_at=utcnow(), **_values(counts))
        )


def _values(counts: HarvestCounts) -> dict[str, object]:
    return {
        "total": counts.total,
        "processed": counts.processed,
        "pages": counts.pages,
        "created": counts.created,
        "versions_added": counts.versions_added,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "failed": counts.failed,
        "issues": [i.model_dump() for i in counts.issues],
    }


def _job(row: HarvestJobRow) -> HarvestJob:
    total = row.total or 0
    processed = row.processed or 0
    progress = 1.0 if row.status == "succeeded" else min(1.0, processed / total) if total else 0.0
    return HarvestJob(
        id=row.id,
        community=row.community,
        status=row.status,
        full=row.full,
        since=as_utc(row.since) if row.since else None,
        until=as_utc(row.until),
        requested_by=row.requested_by,
        created_at=as_utc(row.created_at),
        started_at=as_utc(row.started_at) if row.started_at else None,
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        total=total,
        processed=processed,
        progress=progress,
        pages=row.pages or 0,
        created=row.created or 0,
        versions_added=row.versions_added or 0,
        updated=row.updated or 0,
        unchanged=row.unchanged or 0,
        failed=row.failed or 0,
        issues=[HarvestIssue.model_validate(i) for i in row.issues or []],
        detail=row.detail,
    )
