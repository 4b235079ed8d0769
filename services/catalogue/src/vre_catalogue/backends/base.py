"""The port through which the harvest reads a Zenodo community."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RecordsPage:
    """One page of ``GET /api/records``: the hits and the total of the whole query."""

    total: int
    hits: list[dict[str, Any]]


class ZenodoRecordsSource(Protocol):
    """Read-only access to published Zenodo records (records API)."""

    @property
    def page_size(self) -> int:
        """The largest page this source may ask for (25 anonymous, 100 with a token)."""
        ...

    @property
    def result_window(self) -> int:
        """The deepest hit a query can reach by paging (10,000 on Zenodo)."""
        ...

    async def search(self, *, community: str, query: str, page: int, size: int) -> RecordsPage:
        """One page of the community's records matching a query."""
        ...

    async def fetch_file(self, url: str, *, max_bytes: int) -> bytes:
        """The content of a record's file (from its ``links.self``)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
