"""Search sources: one port, and the adapters of the services' declared search routes (the
projects source lives in services/).

Each source answers in the one result shape (:class:`SearchHit`). Each service declares its
route in :mod:`vre_common.search`; :func:`declared_source` makes its adapter: the list endpoint
called with the caller's token (:class:`HttpListSource`), or the Data Lake's DIDs in the
caller's project scopes (:class:`DatalakeDidSource`). ``search.paths`` and
``search.query_params`` override a declared route.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol, cast
from urllib.parse import quote

import httpx

from vre_common.auth import Principal
from vre_common.clients.datalake import DatalakeClient, Did, raise_for_problem
from vre_common.http import backend_call
from vre_common.policy import ProjectAccess
from vre_common.search import SearchHit, SearchRoute


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


class HttpListSource:
    """A service's declared search route (:class:`vre_common.search.SearchRoute`): its list
    endpoint (``{"items": [...]}``) called with the caller's token, items mapped to hits.

    ``query_param`` names the endpoint's filter (``q``, ``name``); without one the gateway
    keeps the items whose title contains the query.
    """

    def __init__(
        self,
        route: SearchRoute,
        url: str,
        http: httpx.AsyncClient,
        *,
        query_param: str | None,
        size_param: str = "size",
    ) -> None:
        if route.hit is None:
            raise ValueError(f"{route.service}: a list route needs its hit mapper")
        self.name = route.service
        self.types = route.types
        self.url = url
        self.http = http
        self.prefix = f"/{route.service}"
        self._hit = route.hit
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
        hits = [h for h in (self._hit(i, self.prefix) for i in items if isinstance(i, dict)) if h]
        if not self.query_param:  # the endpoint lists everything: keep what matches
            hits = [h for h in hits if query.lower() in h.title.lower()]
        return hits[:limit]


def declared_source(
    route: SearchRoute,
    base_url: str,
    http: httpx.AsyncClient,
    *,
    path: str | None = None,
    query_param: str | None = None,
    max_scopes: int,
) -> SearchSource:
    """The adapter of one declared route (``path``/``query_param``: the settings' overrides)."""
    if route.per_project_scope:
        return DatalakeDidSource(base_url, http, max_scopes=max_scopes)
    return HttpListSource(
        route,
        base_url + (path or route.path),
        http,
        query_param=query_param,
    )
