"""QueryStore: query jobs, each owned by one user key."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import update

from vre_common.db import utcnow
from vre_common.jobs import JobStore
from vre_ivoa.models import Query, QueryResult
from vre_ivoa.storage.schema import QueryRow

ACTIVE_PHASES = ("QUEUED", "EXECUTING")


class NewQuery(BaseModel):
    """What a new job records."""

    owner: str
    owner_name: str
    service: str
    service_type: str
    query: str
    parameters: dict[str, Any]
    upload: str | None
    upload_table: str | None
    maxrec: int
    timeout_seconds: float
    mode: str
    scope: str
    name: str | None
    format: str
    rse: str | None
    project: str | None


class StoredQuery(Query):
    """A job with the fields the runner needs."""

    owner_key: str
    scope: str
    name: str
    upload_table: str | None
    timeout_seconds: float
    rse: str | None
    remote_job: str | None

    def public(self) -> Query:
        """The API view."""
        return Query.model_validate(self.model_dump(include=set(Query.model_fields)))


def _model(row: QueryRow) -> StoredQuery:
    return StoredQuery(
        id=row.id,
        owner=row.owner_name,
        owner_key=row.owner,
        service=row.service,
        service_type=row.service_type,
        query=row.query,
        parameters=dict(row.parameters or {}),
        upload=row.upload,
        upload_table=row.upload_table,
        maxrec=row.maxrec,
        timeout_seconds=row.timeout_seconds,
        mode=row.mode,
        phase=row.phase,
        destination=f"{row.scope}:{row.name}",
        scope=row.scope,
        name=row.name,
        format=row.format,
        rse=row.rse,
        project=row.project,
        remote_job=row.remote_job,
        result=QueryResult.model_validate(row.result) if row.result else None,
        error=row.error,
        warnings=list(row.warnings or []),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        execution_seconds=row.execution_seconds,
    )


class QueryStore(JobStore[QueryRow, StoredQuery]):
    """Query jobs by id, each owned by one user key."""

    row = QueryRow
    state_column = "phase"
    active_states = ACTIVE_PHASES

    def to_model(self, row: QueryRow) -> StoredQuery:
        return _model(row)

    def interrupted_values(self) -> dict[str, Any]:
        return self.interrupted(
            "INTERRUPTED",
            "the ivoa service stopped during this query; submit it again (nothing was written)",
        )

    async def create(self, new: NewQuery, *, name_template: str) -> StoredQuery:
        """A QUEUED job; ``name_template`` ({id}) names the result when none was given."""
        job_id = str(uuid.uuid4())
        values = new.model_dump()
        values["name"] = new.name or name_template.format(id=job_id[:8])
        row = QueryRow(
            id=job_id,
            phase="QUEUED",
            remote_job=None,
            result=None,
            error=None,
            warnings=[],
            created_at=utcnow(),
            **values,
        )
        self.session.add(row)
        await self.session.flush()
        return _model(row)

    async def update(self, query_id: str, **values: Any) -> None:
        """Set columns of one job."""
        await self.session.execute(update(QueryRow).where(QueryRow.id == query_id).values(values))

    async def finish(self, query_id: str, phase: str, **values: Any) -> bool:
        """Move an active job to a final phase (False if it had already ended)."""
        now = utcnow()
        result = await self.session.execute(
            update(QueryRow)
            .where(QueryRow.id == query_id, QueryRow.phase.in_(ACTIVE_PHASES))
            .values(phase=phase, finished_at=now, **values)
        )
        return bool(getattr(result, "rowcount", 0))
