"""Full-text search behind one interface: SQLite FTS5 (bm25) or PostgreSQL (tsvector, ts_rank).

Both index the same document (name, keywords, author names, description, weighted in that
order), stem English words, and match every query word as a word prefix: ``gamma ray``
finds "gamma-ray astronomy". Ranks are "higher is better" on both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Subquery,
    bindparam,
    column,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from vre_catalogue.storage.schema import FTS_TABLE, SoftwareRow

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 16


@dataclass(frozen=True)
class SearchDocument:
    """What an entry is found by."""

    name: str
    description: str
    keywords: list[str]
    authors: list[str]


def query_terms(q: str) -> list[str]:
    """The words of a query (lower case, at most MAX_TERMS)."""
    return [t.lower() for t in _WORD.findall(q)][:MAX_TERMS]


class SearchIndex(Protocol):
    """A dialect's full-text index over catalogue entries."""

    async def put(self, session: AsyncSession, software_id: int, doc: SearchDocument) -> None:
        """Index (or re-index) an entry."""
        ...

    async def remove(self, session: AsyncSession, software_id: int) -> None:
        """Drop an entry from the index."""
        ...

    def matches(self, terms: list[str]) -> Subquery:
        """A subquery of (software_id, rank) for entries matching every term."""
        ...


# Constant SQL (table name and weights are constants; every value is a bound parameter).
# bm25 column weights: name, description, keywords, authors.
_FTS_INSERT = (
    f"INSERT INTO {FTS_TABLE} (rowid, name, description, keywords, authors) "  # noqa: S608
    "VALUES (:id, :name, :description, :keywords, :authors)"
)
_FTS_DELETE = f"DELETE FROM {FTS_TABLE} WHERE rowid = :id"  # noqa: S608
_FTS_MATCH = (
    f"SELECT rowid AS software_id, -bm25({FTS_TABLE}, 10.0, 1.0, 4.0, 2.0) AS rank "  # noqa: S608
    f"FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_query"
)


class SqliteSearchIndex:
    """FTS5 table ``software_fts`` (porter stemming), rowid = software.id, ranked by bm25."""

    async def put(self, session: AsyncSession, software_id: int, doc: SearchDocument) -> None:
        await self.remove(session, software_id)
        await session.execute(
            text(_FTS_INSERT),
            {
                "id": software_id,
                "name": doc.name,
                "description": doc.description,
                "keywords": " ; ".join(doc.keywords),
                "authors": " ; ".join(doc.authors),
            },
        )

    async def remove(self, session: AsyncSession, software_id: int) -> None:
        await session.execute(
            text(_FTS_DELETE),
            {"id": software_id},
        )

    def matches(self, terms: list[str]) -> Subquery:
        expression = " ".join(f'"{t}"*' for t in terms)
        stmt = (
            text(_FTS_MATCH)
            .bindparams(bindparam("fts_query", expression))
            .columns(column("software_id", Integer), column("rank", Float))
        )
        return stmt.subquery("fts")


class PostgresSearchIndex:
    """A weighted tsvector in ``software.search_tsv`` (GIN index), ranked by ts_rank."""

    CONFIG = "english"

    async def put(self, session: AsyncSession, software_id: int, doc: SearchDocument) -> None:
        def weighted(value: str, weight: str) -> ColumnElement[Any]:
            # setweight() takes a "char": a literal, never a bound (varchar) parameter.
            return func.setweight(
                func.to_tsvector(self.CONFIG, value), literal_column(f"'{weight}'")
            )

        vector = (
            weighted(doc.name, "A")
            .op("||")(weighted(" ; ".join(doc.keywords), "B"))
            .op("||")(weighted(" ; ".join(doc.authors), "C"))
            .op("||")(weighted(doc.description, "D"))
        )
        await session.execute(
            update(SoftwareRow).where(SoftwareRow.id == software_id).values(search_tsv=vector)
        )

    async def remove(self, session: AsyncSession, software_id: int) -> None:
        await session.execute(
            update(SoftwareRow).where(SoftwareRow.id == software_id).values(search_tsv=None)
        )

    def matches(self, terms: list[str]) -> Subquery:
        tsquery = func.to_tsquery(self.CONFIG, " & ".join(f"{t}:*" for t in terms))
        return (
            select(
                SoftwareRow.id.label("software_id"),
                func.ts_rank(SoftwareRow.search_tsv, tsquery).label("rank"),
            )
            .where(SoftwareRow.search_tsv.op("@@")(tsquery))
            .subquery("fts")
        )


def search_index_for(dialect: str) -> SearchIndex:
    """The index implementation for a database dialect."""
    if dialect == "sqlite":
        return SqliteSearchIndex()
    if dialect == "postgresql":
        return PostgresSearchIndex()
    raise ValueError(f"no full-text search for the {dialect} dialect")
