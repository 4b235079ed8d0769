"""The federated search's one result shape, and each service's declared search route.

The gateway's ``GET /search`` asks every enabled source and merges what they answer as
:class:`SearchHit` items. A service takes part by declaring, here, its :class:`SearchRoute`:
the route the gateway calls (with the caller's token), the query parameter that filters it,
the result types, and how one item of its ``{"items": [...]}`` answer becomes a hit. The
gateway iterates over :data:`SEARCH_ROUTES` (no if/elif on service names); a test checks
that every declared route is one of its service's routes. A new service adds one entry.

(The declarations live in vre_common because the gateway of the distributed mode has no
service package installed.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field


class SearchHit(BaseModel):
    """One result, whatever its source."""

    type: str = Field(examples=["project", "did", "software", "run", "deposition"])
    id: str
    title: str
    project: str | None = None
    links: dict[str, str] = Field(default_factory=dict)


HitMapper = Callable[[dict[str, Any], str], "SearchHit | None"]
"""One item of a service's answer, and the service's prefix at the gateway, as a hit."""


@dataclass(frozen=True)
class SearchRoute:
    """How the gateway searches one service (its search source).

    ``path`` is the service's list or search route; ``query_param`` the parameter it filters
    by (None: the gateway keeps the items whose title contains the words); ``hit`` maps one
    item. ``per_project_scope``: the route is asked once per project scope of the caller
    (the datalake's DIDs, ``{scope}`` in ``path``), with the query as a DID name filter.
    """

    service: str
    path: str
    types: frozenset[str]
    query_param: str | None
    hit: HitMapper | None = None
    per_project_scope: bool = False


def software_hit(item: dict[str, Any], prefix: str) -> SearchHit | None:
    """A catalogue ``SoftwareHit`` as a search hit."""
    if "id" not in item:
        return None
    return SearchHit(
        type="software",
        id=str(item["id"]),
        title=str(item.get("name") or item["id"]),
        project=item.get("project"),
        links={"self": f"{prefix}/software/{item['id']}"},
    )


def run_hit(item: dict[str, Any], prefix: str) -> SearchHit | None:
    """A workflows ``RunSummary`` as a search hit."""
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


def deposition_hit(item: dict[str, Any], prefix: str) -> SearchHit | None:
    """A zenodo ``Deposition`` as a search hit."""
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


def vo_hit(item: dict[str, Any], prefix: str) -> SearchHit | None:
    """An ivoa search item (a configured VO service, or one of its tables) as a search hit."""
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


SEARCH_ROUTES: dict[str, SearchRoute] = {
    source.service: source
    for source in (
        SearchRoute(
            "datalake",
            "/dids/{scope}",
            frozenset({"did"}),
            query_param="name",
            per_project_scope=True,
        ),
        SearchRoute("catalogue", "/software/search", frozenset({"software"}), "q", software_hit),
        SearchRoute("workflows", "/runs", frozenset({"run"}), "name", run_hit),
        SearchRoute("zenodo", "/depositions", frozenset({"deposition"}), None, deposition_hit),
        SearchRoute("ivoa", "/search", frozenset({"vo-service", "vo-table"}), "q", vo_hit),
    )
}
"""Every service's declared search route, by service name."""
