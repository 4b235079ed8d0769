"""The provenance graph in SQL: received event ids, nodes, edges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from vre_gateway.storage.records import EdgeRecord, NodeRecord, utc
from vre_gateway.storage.schema import ProvEdgeRow, ProvEventRow, ProvNodeRow


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    values = [utc(v) for v in (a, b) if v is not None]
    return min(values) if values else None


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    values = [utc(v) for v in (a, b) if v is not None]
    return max(values) if values else None


class ProvenanceStore:
    """Idempotent writes of events into the graph, and neighbourhood reads."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self, table: Any) -> Any:
        bind = self.session.bind
        dialect = bind.dialect.name if bind is not None else "sqlite"
        module = postgresql if dialect == "postgresql" else sqlite
        return module.insert(table)

    async def claim_event(
        self, event_id: str, *, kind: str, service: str, time: datetime, received_at: datetime
    ) -> bool:
        """Record an event id; False if it was seen before (a redelivery)."""
        stmt = (
            self._insert(ProvEventRow)
            .values(id=event_id, kind=kind, service=service, time=time, received_at=received_at)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(ProvEventRow.id)
        )
        inserted = (await self.session.execute(stmt)).scalar_one_or_none()
        return inserted is not None

    async def merge_node(self, node: NodeRecord) -> None:
        """Insert a node, or merge what this event adds to the one already there."""
        values = node.model_dump()
        stmt = (
            self._insert(ProvNodeRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(ProvNodeRow.id)
        )
        if (await self.session.execute(stmt)).scalar_one_or_none() is not None:
            return
        row = await self.session.get(ProvNodeRow, node.id, populate_existing=True)
        assert row is not None
        row.project_id = row.project_id or node.project_id
        row.label = node.label or row.label
        row.actor = row.actor or node.actor
        row.actor_name = row.actor_name or node.actor_name
        row.started_at = _min(row.started_at, node.started_at)
        row.ended_at = _max(row.ended_at, node.ended_at)
        row.invalidated_at = row.invalidated_at or node.invalidated_at
        if node.attributes:
            row.attributes = {**(row.attributes or {}), **node.attributes}
        await self.session.flush()

    async def add_edges(self, edges: Sequence[tuple[str, str, str]], at: datetime) -> None:
        """Insert edges (src, dst, relation); existing ones are kept."""
        if not edges:
            return
        rows = [{"src": s, "dst": d, "relation": r, "at": at} for s, d, r in set(edges)]
        stmt = self._insert(ProvEdgeRow).on_conflict_do_nothing(
            index_elements=["src", "dst", "relation"]
        )
        await self.session.execute(stmt, rows)

    async def nodes(self, ids: Sequence[str]) -> dict[str, NodeRecord]:
        """Nodes by id."""
        out: dict[str, NodeRecord] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            rows = await self.session.scalars(
                select(ProvNodeRow).where(ProvNodeRow.id.in_(unique[start : start + 500]))
            )
            out.update({r.id: NodeRecord.model_validate(r) for r in rows})
        return out

    async def edges_from(self, ids: Sequence[str], *, upward: bool) -> list[EdgeRecord]:
        """Edges leaving ``ids`` (upward: towards sources) or arriving at them (downward)."""
        column = ProvEdgeRow.src if upward else ProvEdgeRow.dst
        out: list[EdgeRecord] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            rows = await self.session.scalars(
                select(ProvEdgeRow)
                .where(column.in_(unique[start : start + 500]))
                .order_by(ProvEdgeRow.src, ProvEdgeRow.dst)
            )
            out.extend(EdgeRecord.model_validate(r) for r in rows)
        return out
