"""One result shape for every search source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SourceStatus = Literal["ok", "timeout", "error", "skipped"]


class SearchHit(BaseModel):
    """One result, whatever its source."""

    type: str = Field(examples=["project", "did", "software", "run", "deposition"])
    id: str
    title: str
    project: str | None = None
    links: dict[str, str] = Field(default_factory=dict)


class SearchResults(BaseModel):
    """Results of every source that answered in time; ``partial`` if one did not."""

    query: str
    items: list[SearchHit]
    partial: bool
    sources: dict[str, SourceStatus]
