"""Search sources: one port, one adapter per service (the projects source lives in services/).

Each source answers in the one result shape (:class:`SearchHit`). The HTTP adapters call the
services' list endpoints with the caller's token; the endpoints are configurable
(``search.paths``) because the services define them.
"""

from __future__ import annotations

import re
import unicodedata
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


class SourceSkipped(Exception):  # noqa: N818 - a signal, not an error
    """A source cannot express this query (e.g. no character of it can occur in a DID name):
    it answers nothing for it, and that is not a failure (``sources[name] == "skipped"``)."""


class SearchSource(Protocol):
    """One place to search."""

    name: str
    types: frozenset[str]

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        """At most ``limit`` hits for ``query`` that the caller may see."""
        ...


# A DID name is ASCII letters, digits and ``._-/`` (vre_datalake.names); a term is a run of
# those starting with a letter or digit, so no term can be a ``.``/``..`` segment.
_DID_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_META_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,99})(>=|<=|!=|=|>|<)(\S+)$")


@dataclass(frozen=True)
class DidQuery:
    """Free text as a Data Lake query: name terms (all must occur in the name, in any order,
    case-insensitively) and metadata conditions (``key=value`` words of the text)."""

    terms: tuple[str, ...]
    meta: tuple[str, ...]

    @property
    def name_pattern(self) -> str:
        """The Rucio name filter: the longest term between wildcards (the others are checked
        on the names that come back)."""
        if not self.terms:
            return "*"
        return "*" + max(self.terms, key=len) + "*"

    @property
    def name_patterns(self) -> list[str]:
        """Rucio compares names case-sensitively: the pattern as typed, and in lower case
        (how names are mostly written) when that differs."""
        return list(dict.fromkeys([self.name_pattern, self.name_pattern.lower()]))

    def matches(self, name: str) -> bool:
        """Whether a DID name contains every term."""
        lowered = name.lower()
        return all(term.lower() in lowered for term in self.terms)


def did_query(text: str) -> DidQuery | None:
    """``text`` as a :class:`DidQuery`, or None when nothing in it can occur in a DID name.

    Accents are folded (``café`` → ``cafe``); quotes, spaces, wildcards and other characters a
    name cannot hold separate terms; a word ``key<op>value`` (op ``= != > >= < <=``) becomes a
    metadata condition.
    """
    terms: list[str] = []
    meta: list[str] = []
    for word in text.split():
        if _META_TERM.match(word):
            meta.append(word)
            continue
        folded = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
        terms.extend(_DID_TERM.findall(folded))
    if not terms and not meta:
        return None
    return DidQuery(terms=tuple(dict.fromkeys(terms)), meta=tuple(meta))


class DatalakeDidSource:
    """DIDs whose name matches, in the scopes of the caller's projects (``GET /dids/{scope}``).

    Free text becomes a name/metadata query (:func:`did_query`); text with nothing a DID name
    can contain skips this source (:class:`SourceSkipped`) instead of failing it.
    """

    name = "datalake"
    types = frozenset({"did"})

    def __init__(self, datalake_url: str, http: httpx.AsyncClient, *, max_scopes: int) -> None:
        self.base_url = datalake_url.rstrip("/")
        self.http = http
        self.max_scopes = max_scopes

    async def search(self, ctx: SearchContext, query: str, limit: int) -> list[SearchHit]:
        wanted = did_query(query)
        if wanted is None:
            raise SourceSkipped(query)
        client = DatalakeClient(self.base_url, ctx.token, http=self.http)
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for project in ctx.projects[: self.max_scopes]:
            for pattern in wanted.name_patterns:
                dids_of = cast(
                    "AsyncGenerator[Did, None]",
                    client.list_dids(project.scope, name=pattern, conditions=wanted.meta),
                )
                async with aclosing(dids_of) as dids:
                    async for did in dids:
                        key = f"{did.scope}:{did.name}"
                        if key in seen or not wanted.matches(did.name):
                            continue
                        seen.add(key)
                        hits.append(_did_hit(did, project.project))
                        if len(hits) >= limit:
                            return hits
        return hits


def _did_hit(did: Did, project: str) -> SearchHit:
    return SearchHit(
        type="did",
        id=f"{did.scope}:{did.name}",
        title=did.name,
        project=project,
        links={
            "self": f"/datalake/dids/{did.scope}/{quote(did.name)}",
            "provenance": f"/provenance?entity=did:{did.scope}:{did.name}",
        },
    )


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
