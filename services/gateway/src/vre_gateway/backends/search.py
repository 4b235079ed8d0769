"""Search sources: one port, one adapter per service (the projects source lives in services/).

Each source answers in the one result shape (:class:`SearchHit`). The HTTP adapters call the
services' list endpoints with the caller's token; the endpoints are configurable
(``search.paths``) because the services define them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from urllib.parse import quote

import httpx

from vre_common.auth import Principal
from vre_common.clients.datalake import DatalakeClient, Did, raise_for_problem
from vre_common.http import backend_call
from vre_common.policy import ProjectAccess
from vre_gateway.models.search import SearchHit


@dataclass(frozen=True)
class SearchContext:
    """Who asks: the caller, their token, and the projects whose data they may read."""

    principal: Principal
    token: str | None
    projects: list[ProjectAccess] = field(default_factory=list)


class SearchSource(Protocol):
    """One place to search."""

    name: str
    types: frozenset[str]

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        """At most ``limit`` hits for ``query`` that the caller may see."""
        ...


class DatalakeDidSource:
    """DIDs whose name matches, in the scopes of the caller's projects (``GET /dids/{scope}``).

    Rucio filters names with wildcards only; metadata values are not searched as free text.
    """

    name = "datalake"
    types = frozenset({"did"})

    def __init__(self, datalake_url: str, http: httpx.AsyncClient, *, max_scopes: int) -> None:
        self.base_url = datalake_url.rstrip("/")
        self.http = http
        self.max_scopes = max_scopes

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        client = DatalakeClient(self.base_url, ctx.token, http=self.http)
        pattern = "*" + "".join(c for c in query if c not in "*%") + "*"
        hits: list[SearchHit] = []
        for project in ctx.projects[: self.max_scopes]:
            dids_of = cast(
                "AsyncGenerator[Did, None]", client.list_dids(project.scope, name=pattern)
            )
            async with aclosing(dids_of) as dids:
                async for did in dids:
                    hits.append(
                        SearchHit(
                            type="did",
                            id=f"{did.scope}:{did.name}",
                            title=did.name,
                            project=project.project,
                            links={
                                "self": f"/datalake/dids/{did.scope}/{quote(did.name)}",
                                "provenance": f"/provenance?entity=did:{did.scope}:{did.name}",
                            },
                        )
                    )
                    if len(hits) >= limit:
                        return hits
        return hits


Mapper = Callable[[dict[str, Any]], SearchHit | None]


class HttpListSource:
    """A service's list endpoint (``{"items": [...]}``) mapped to hits.

    ``query_param`` names the endpoint's filter (``q``, ``name``); without one the gateway
    keeps the items whose title contains the query.
    """

    def __init__(
        self,
        name: str,
        result_type: str,
        url: str,
        http: httpx.AsyncClient,
        mapper: Mapper,
        *,
        query_param: str | None = "q",
        size_param: str = "size",
    ) -> None:
        self.name = name
        self.types = frozenset({result_type})
        self.url = url
        self.http = http
        self.mapper = mapper
        self.query_param = query_param
        self.size_param = size_param

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        headers = {"Accept": "application/json"}
        if ctx.token:
            headers["Authorization"] = f"Bearer {ctx.token}"
        async with backend_call(self.name, "search"):
            params: dict[str, str | int] = {self.size_param: limit}
            if self.query_param:
                params[self.query_param] = query
            response = await self.http.get(self.url, params=params, headers=headers)
        await raise_for_problem(response, f"{self.name} search")
        items = response.json().get("items", [])
        hits = [h for h in (self.mapper(i) for i in items if isinstance(i, dict)) if h]
        if not self.query_param:  # the endpoint lists everything: keep what matches
            hits = [h for h in hits if query.lower() in h.title.lower()]
        return hits[:limit]


def catalogue_hit(prefix: str) -> Mapper:
    """A catalogue ``SoftwareHit`` as a search hit."""

    def mapper(item: dict[str, Any]) -> SearchHit | None:
        if "id" not in item:
            return None
        return SearchHit(
            type="software",
            id=str(item["id"]),
            title=str(item.get("name") or item["id"]),
            project=item.get("project"),
            links={"self": f"{prefix}/software/{item['id']}"},
        )

    return mapper


def run_hit(prefix: str) -> Mapper:
    """A workflows ``RunSummary`` as a search hit."""

    def mapper(item: dict[str, Any]) -> SearchHit | None:
        if "id" not in item:
            return None
        return SearchHit(
            type="run",
            id=str(item["id"]),
            title=str(item.get("name") or item["id"]),
            project=item.get("project"),
            links={
                "self": f"{prefix}/runs/{item['id']}",
                "provenance": f"/provenance?entity=run:{item['id']}",
            },
        )

    return mapper


def deposition_hit(prefix: str) -> Mapper:
    """A zenodo ``Deposition`` as a search hit."""

    def mapper(item: dict[str, Any]) -> SearchHit | None:
        if "id" not in item:
            return None
        links = {"self": f"{prefix}/depositions/{item['id']}"}
        if item.get("doi"):
            links["doi"] = f"https://doi.org/{item['doi']}"
            links["provenance"] = f"/provenance?entity=doi:{str(item['doi']).lower()}"
        if item.get("html_url"):
            links["html"] = str(item["html_url"])
        return SearchHit(
            type="deposition",
            id=str(item["id"]),
            title=str(item.get("title") or item.get("doi") or item["id"]),
            project=item.get("project"),
            links=links,
        )

    return mapper


VO_TYPES = frozenset({"vo-service", "vo-table"})


def vo_hit(prefix: str) -> Mapper:
    """An ivoa search item (a configured VO service, or one of its tables) as a search hit."""

    def mapper(item: dict[str, Any]) -> SearchHit | None:
        service = item.get("service")
        if not service:
            return None
        links = {"service": f"{prefix}/services/{service}"}
        if item.get("kind") == "table":
            table = str(item.get("title") or "")
            links["self"] = f"{prefix}/services/{service}/tables?q={quote(table)}"
            return SearchHit(type="vo-table", id=f"{service}:{table}", title=table, links=links)
        links["self"] = links["service"]
        title = str(item.get("title") or service)
        return SearchHit(type="vo-service", id=str(service), title=title, links=links)

    return mapper
