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


# rows per statement: well below SQLite's and PostgreSQL's limits on bound parameters
_CHUNK = 200
_MERGED_FIELDS = (
    "project_id",
    "label",
    "actor",
    "actor_name",
    "started_at",
    "ended_at",
    "invalidated_at",
    "attributes",
)


def merged(known: NodeRecord, node: NodeRecord) -> NodeRecord:
    """What a node becomes when a later event reports it again: the first project, actor and
    invalidation stay; the newest label; the earliest start and the latest end; attributes
    merged, the later's winning."""
    return known.model_copy(
        update={
            "project_id": known.project_id or node.project_id,
            "label": node.label or known.label,
            "actor": known.actor or node.actor,
            "actor_name": known.actor_name or node.actor_name,
            "started_at": _min(known.started_at, node.started_at),
            "ended_at": _max(known.ended_at, node.ended_at),
            "invalidated_at": known.invalidated_at or node.invalidated_at,
            "attributes": {**known.attributes, **node.attributes}
            if node.attributes
            else known.attributes,
        }
    )


class ProvenanceStore:
    """Idempotent writes of events into the graph, and neighbourhood reads."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self, table: Any) -> Any:
        bind = self.session.bind
        dialect = bind.dialect.name if bind is not None else "sqlite"
        module = postgresql if dialect == "postgresql" else sqlite
        return module.insert(table)

    async def claim_events(
        self, events: Sequence[tuple[str, str, str, datetime]], received_at: datetime
    ) -> set[str]:
        """Record event ids (id, kind, service, time); answers those not seen before (the
        others are redeliveries). One statement per chunk, however many events."""
        fresh: set[str] = set()
        unique = list({e[0]: e for e in reversed(events)}.values())[::-1]
        for start in range(0, len(unique), _CHUNK):
            rows = [
                {"id": i, "kind": k, "service": s, "time": t, "received_at": received_at}
                for i, k, s, t in unique[start : start + _CHUNK]
            ]
            stmt = (
                self._insert(ProvEventRow)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(ProvEventRow.id)
            )
            fresh.update((await self.session.scalars(stmt, rows)).all())
        return fresh

    async def merge_nodes(self, nodes: Sequence[NodeRecord]) -> None:
        """Insert nodes, or merge what they add to those already there (in order: a later
        record's label and attributes win, the earliest start and latest end are kept)."""
        combined: dict[str, NodeRecord] = {}
        for node in nodes:
            known = combined.get(node.id)
            combined[node.id] = merged(known, node) if known else node
        pending = list(combined.values())
        existing: list[NodeRecord] = []
        for start in range(0, len(pending), _CHUNK):
            chunk = pending[start : start + _CHUNK]
            stmt = (
                self._insert(ProvNodeRow)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(ProvNodeRow.id)
            )
            inserted = set(
                (await self.session.scalars(stmt, [n.model_dump() for n in chunk])).all()
            )
            existing.extend(n for n in chunk if n.id not in inserted)
        if not existing:
            return
        by_id: dict[str, ProvNodeRow] = {}
        for start in range(0, len(existing), _CHUNK):
            rows = await self.session.scalars(
                select(ProvNodeRow)
                .where(ProvNodeRow.id.in_([n.id for n in existing[start : start + _CHUNK]]))
                .execution_options(populate_existing=True)
            )
            by_id.update((row.id, row) for row in rows)
        for node in existing:
            row = by_id[node.id]
            update = merged(NodeRecord.model_validate(row), node)
            for field in _MERGED_FIELDS:
                value = getattr(update, field)
                if getattr(row, field) != value:
                    setattr(row, field, value)
        await self.session.flush()

    async def add_edges(self, edges: Sequence[tuple[str, str, str, datetime]]) -> None:
        """Insert edges (src, dst, relation, at); existing ones are kept, and of one edge
        given twice the first."""
        unique = list({(s, d, r): a for s, d, r, a in reversed(edges)}.items())[::-1]
        for start in range(0, len(unique), _CHUNK):
            rows = [
                {"src": s, "dst": d, "relation": r, "at": a}
                for (s, d, r), a in unique[start : start + _CHUNK]
            ]
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
