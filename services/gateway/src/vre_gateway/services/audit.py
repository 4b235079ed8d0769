"""Writing the audit log: every write of the gateway, and every event a service reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vre_common.auth import Principal
from vre_common.logging import current_request_id
from vre_gateway.models.audit import AuditEntry, AuditPage
from vre_gateway.storage.audit import AuditStore
from vre_gateway.storage.records import AuditRecord, ProjectRecord


@dataclass(frozen=True)
class AuditEntryDraft:
    """One row to append: who (principal, or (key, name) for reported events), what, where,
    when (now unless given)."""

    actor: Principal | tuple[str, str | None]
    action: str
    project: ProjectRecord | None = None
    target: str | None = None
    detail: dict[str, Any] | None = None
    source: str = "gateway"
    request_id: str | None = None
    at: datetime | None = None
    project_id: str | None = None

    def record(self) -> AuditRecord:
        key, name = (
            (self.actor.key, self.actor.username)
            if isinstance(self.actor, Principal)
            else self.actor
        )
        return AuditRecord(
            id=0,
            at=self.at or datetime.now(UTC),
            project_id=self.project.id if self.project else self.project_id,
            project_slug=self.project.slug if self.project else None,
            actor=key,
            actor_name=name,
            source=self.source,
            action=self.action,
            target=self.target[:600] if self.target else None,
            request_id=self.request_id or current_request_id(),
            detail=self.detail or {},
        )


class Auditor:
    """Appends audit rows in the request's transaction (so a failed write leaves none)."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def record(
        self,
        actor: Principal | tuple[str, str | None],
        action: str,
        *,
        project: ProjectRecord | None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        source: str = "gateway",
        request_id: str | None = None,
        at: datetime | None = None,
        project_id: str | None = None,
    ) -> None:
        """One row (see :class:`AuditEntryDraft`)."""
        await self.record_many(
            [
                AuditEntryDraft(
                    actor,
                    action,
                    project=project,
                    target=target,
                    detail=detail,
                    source=source,
                    request_id=request_id,
                    at=at,
                    project_id=project_id,
                )
            ]
        )

    async def record_many(self, drafts: Sequence[AuditEntryDraft]) -> None:
        """Rows in the given order, in one round trip."""
        if drafts:
            await self.store.append_many([d.record() for d in drafts])

    async def page(self, project: ProjectRecord, *, before: int | None, limit: int) -> AuditPage:
        """A page of a project's log, newest first."""
        rows = await self.store.page(project.id, before=before, limit=limit)
        items = [AuditEntry.model_validate(r.model_dump()) for r in rows]
        return AuditPage(items=items, next_before=items[-1].id if len(items) == limit else None)
