"""One result shape for every search source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from vre_common.search import SearchHit

__all__ = ["SearchHit", "SearchResults", "SourceStatus"]

SourceStatus = Literal["ok", "timeout", "error", "skipped"]


class SearchResults(BaseModel):
    """Results of every source that answered in time; ``partial`` if one did not."""

    query: str
    items: list[SearchHit]
    partial: bool
    sources: dict[str, SourceStatus]
