"""RecordService: Zenodo records search and lookup, within Zenodo's paging limits."""

from __future__ import annotations

import re

from vre_common.errors import InvalidInputError
from vre_zenodo.backends.base import RecordQuery, ZenodoPort, ZenodoRecord
from vre_zenodo.errors import RecordNotFoundError
from vre_zenodo.models import RecordPage

_DOI_PREFIXES = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", re.IGNORECASE)


def normalise_doi(doi: str) -> str:
    """``https://doi.org/10.5281/X`` and ``doi:10.5281/X`` → ``10.5281/X`` (lower case)."""
    return _DOI_PREFIXES.sub("", doi.strip()).lower()


class RecordService:
    """Search Zenodo for the caller (with their token if registered: bigger pages)."""

    def __init__(self, *, zenodo: ZenodoPort, result_window: int, doi_pattern: str) -> None:
        self._zenodo = zenodo
        self._window = result_window
        self._doi_pattern = re.compile(doi_pattern, re.IGNORECASE)

    async def search(
        self,
        *,
        q: str | None,
        community: str | None,
        record_type: str | None,
        page: int,
        size: int,
        sort: str | None,
        token: str | None,
    ) -> RecordPage:
        """Our page ``page`` of ``size`` hits, assembled from Zenodo pages of allowed size.

        A size above Zenodo's cap (25 anonymous, 100 with a token) is served by asking for
        consecutive capped pages and slicing; nothing past Zenodo's 10,000-hit window.
        """
        offset = (page - 1) * size
        if offset + size > self._window:
            raise InvalidInputError(
                f"Zenodo serves only the first {self._window} hits of a search; narrow the "
                "query (e.g. by community, type or date) instead of paging this deep",
                errors=[{"loc": ["query", "page"], "msg": "beyond the result window",
                         "type": "value_error"}],
            )  # fmt: skip
        cap = self._zenodo.page_size_cap(token)
        base = RecordQuery(
            q=q, communities=[community] if community else [], type=record_type, sort=sort
        )
        if size <= cap:
            result = await self._zenodo.search_records(
                base.model_copy(update={"page": page, "size": size}), token
            )
            return RecordPage(
                items=result.hits,
                total=result.total,
                page=page,
                size=size,
                has_next=result.has_next,
                page_size_cap=cap,
            )
        first = offset // cap + 1
        last = (offset + size - 1) // cap + 1
        hits: list[ZenodoRecord] = []
        total = 0
        for zenodo_page in range(first, last + 1):
            result = await self._zenodo.search_records(
                base.model_copy(update={"page": zenodo_page, "size": cap}), token
            )
            hits.extend(result.hits)
            total = result.total
            if not result.has_next:
                break
        start = offset - (first - 1) * cap
        items = hits[start : start + size]
        return RecordPage(
            items=items,
            total=total,
            page=page,
            size=size,
            has_next=offset + size < min(total, self._window),
            page_size_cap=cap,
        )

    async def get(self, record_id: int, token: str | None) -> ZenodoRecord:
        """One record with its files."""
        return await self._zenodo.get_record(record_id, token)

    async def resolve_doi(self, doi: str, token: str | None) -> int:
        """The record id a DOI names: read from a Zenodo DOI, else found by search."""
        doi = normalise_doi(doi)
        match = self._doi_pattern.match(doi)
        if match:
            return int(match.group(1))
        result = await self._zenodo.search_records(
            RecordQuery(q=f'doi:"{doi}"', page=1, size=5), token
        )
        for record in result.hits:
            if record.doi and record.doi.lower() == doi:
                return record.id
        raise RecordNotFoundError(f"Zenodo has no record with the DOI {doi}")
