"""One search over the projects and every service, each source with its own timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from vre_common.auth import Principal
from vre_common.policy import Action, is_allowed
from vre_gateway.backends.search import SearchContext, SearchSource, SourceSkipped
from vre_gateway.models.search import SearchHit, SearchResults, SourceStatus
from vre_gateway.services.access import to_access
from vre_gateway.storage.projects import ProjectStore

log = structlog.get_logger("vre.search")


class ProjectSearchSource:
    """Project names, slugs and descriptions (the caller's projects and public ones)."""

    name = "projects"
    types = frozenset({"project"})

    def __init__(self, store: ProjectStore) -> None:
        self.store = store

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        records = await self.store.list_visible(
            ctx.principal, mine=True, public=True, limit=limit, offset=0, query=query
        )
        return [
            SearchHit(
                type="project",
                id=r.slug,
                title=r.name,
                project=r.slug,
                links={"self": f"/projects/{r.slug}", "scope": f"/datalake/dids/{r.scope}"},
            )
            for r in records
        ]


class SearchService:
    """Asks every source at once; a source that is slow or failing marks the answer partial."""

    def __init__(
        self,
        *,
        store: ProjectStore,
        sources: Sequence[SearchSource],
        timeouts: dict[str, float],
        default_timeout: float,
        per_source_limit: int,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.timeouts = timeouts
        self.default_timeout = default_timeout
        self.per_source_limit = per_source_limit

    async def _context(self, principal: Principal, token: str | None) -> SearchContext:
        records = await self.store.list_visible(
            principal, mine=True, public=False, limit=1000, offset=0
        )
        roles = await self.store.roles(principal, [r.id for r in records])
        projects = [
            to_access(r, roles.get(r.id))
            for r in records
            if is_allowed(Action.DATA_READ, roles.get(r.id), r.visibility, authenticated=True)
        ]
        return SearchContext(principal=principal, token=token, projects=projects)

    async def search(
        self,
        principal: Principal,
        token: str | None,
        query: str,
        types: set[str] | None,
        limit: int,
    ) -> SearchResults:
        """Hits of every wanted source, in source order; ``partial`` only if a source failed
        or timed out (one that cannot express the query is ``skipped``, not a failure)."""
        ctx = await self._context(principal, token)
        per_source = min(limit, self.per_source_limit)
        wanted = [s for s in self.sources if types is None or s.types & types]
        statuses: dict[str, SourceStatus] = {
            s.name: "skipped" for s in self.sources if s not in wanted
        }

        async def one(source: SearchSource) -> list[SearchHit]:
            timeout = self.timeouts.get(source.name, self.default_timeout)
            try:
                hits = await asyncio.wait_for(source.search(ctx, query, per_source), timeout)
            except SourceSkipped:
                statuses[source.name] = "skipped"
                return []
            except TimeoutError:
                statuses[source.name] = "timeout"
                log.warning("search_source_timeout", source=source.name, timeout=timeout)
                return []
            except Exception as exc:  # one source failing must not fail the search
                statuses[source.name] = "error"
                log.warning("search_source_failed", source=source.name, error=repr(exc)[:200])
                return []
            statuses[source.name] = "ok"
            return hits

        # The projects source shares the request's session: run it first, alone.
        local = [s for s in wanted if isinstance(s, ProjectSearchSource)]
        remote = [s for s in wanted if not isinstance(s, ProjectSearchSource)]
        results = [await one(s) for s in local]
        results += await asyncio.gather(*(one(s) for s in remote))
        items = [hit for hits in results for hit in hits if types is None or hit.type in types][
            :limit
        ]
        partial = any(v in ("timeout", "error") for v in statuses.values())
        ordered = {s.name: statuses[s.name] for s in self.sources}
        return SearchResults(query=query, items=items, partial=partial, sources=ordered)
