"""Writing the audit log: every write of the gateway, and every event a service reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vre_common.auth import Principal
from vre_common.logging import current_request_id
from vre_gateway.models.audit import AuditEntry, AuditPage
from vre_gateway.storage.audit import AuditStore
from vre_gateway.storage.records import AuditRecord, ProjectRecord


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
        """One row: who (principal, or (key, name) for reported events), what, where, when."""
        key, name = (actor.key, actor.username) if isinstance(actor, Principal) else actor
        await self.store.append(
            AuditRecord(
                id=0,
                at=at or datetime.now(UTC),
                project_id=project.id if project else project_id,
                project_slug=project.slug if project else None,
                actor=key,
                actor_name=name,
                source=source,
                action=action,
                target=target[:600] if target else None,
                request_id=request_id or current_request_id(),
                detail=detail or {},
            )
        )

    async def page(self, project: ProjectRecord, *, before: int | None, limit: int) -> AuditPage:
        """A page of a project's log, newest first."""
        rows = await self.store.page(project.id, before=before, limit=limit)
        items = [AuditEntry.model_validate(r.model_dump()) for r in rows]
        return AuditPage(items=items, next_before=items[-1].id if len(items) == limit else None)
