"""Projects, the software catalogue, Zenodo, IVOA and provenance from Python.

>>> import vre
>>> c = vre.Client()
>>> c.projects.create("Dilepton resonance search", slug="dilepton")
>>> c.catalogue.search("gammapy")["items"][0]["name"]
>>> pub = c.zenodo.publish(run, {"title": "Fit results", "upload_type": "dataset", ...})
>>> pub.doi
'10.5281/zenodo.123456'
>>> graph = c.provenance(f"doi:{pub.doi}")          # nodes and edges up to the inputs
>>> tap = c.ivoa.tap("gavo")                         # a pyvo TAPService (extra [ivoa])
"""

from __future__ import annotations

import builtins
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from vre._http import Session, origin, q
from vre.errors import VreError, WaitTimeoutError

if TYPE_CHECKING:
    import pyvo

    from vre.workflows import Run


def _wait(
    session: Session, path: str, done: Any, *, timeout: float, what: str, poll: float = 0.5
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = session.json("GET", path)
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise WaitTimeoutError(f"{what} still {body.get('state')} after {timeout}s")
        time.sleep(poll)


class Projects:
    """``Client().projects``: Science Projects you own or belong to."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def list(self) -> builtins.list[dict[str, Any]]:
        """Projects you can see (with your role)."""
        return list(self._s.json("GET", "/projects")["items"])

    def get(self, slug: str) -> dict[str, Any]:
        """One project."""
        return dict(self._s.json("GET", f"/projects/{q(slug)}"))

    def create(
        self,
        name: str,
        *,
        slug: str | None = None,
        description: str = "",
        visibility: str = "private",
    ) -> dict[str, Any]:
        """Create a project; you are its owner and its Data Lake scope is ``proj.<slug>``."""
        body: dict[str, Any] = {"name": name, "description": description, "visibility": visibility}
        if slug:
            body["slug"] = slug
        return dict(self._s.json("POST", "/projects", json=body))

    def members(self, slug: str) -> builtins.list[dict[str, Any]]:
        """The project's members and their roles."""
        body = self._s.json("GET", f"/projects/{q(slug)}/members")
        return list(body["items"] if isinstance(body, dict) else body)

    def add_group(self, slug: str, group: str, role: str = "member") -> dict[str, Any]:
        """Make everyone in an IAM group a member with ``role``."""
        path = f"/projects/{q(slug)}/groups"
        return dict(self._s.json("POST", path, json={"group": group, "role": role}))


class Catalogue:
    """``Client().catalogue``: search and register research software (codemeta)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def search(self, text: str = "", **facets: str) -> dict[str, Any]:
        """Full-text search with facets (keyword, license, language, platform, community):
        ``{"total", "items", "facets"}``."""
        params = {"q": text, **facets} if text else dict(facets)
        return dict(self._s.json("GET", "/catalogue/software/search", params=params))

    def get(self, software_id: str) -> dict[str, Any]:
        """One entry."""
        return dict(self._s.json("GET", f"/catalogue/software/{q(software_id)}"))

    def register(
        self, codemeta: str | os.PathLike[str] | Mapping[str, Any], *, project: str | None = None
    ) -> dict[str, Any]:
        """Register a codemeta.json (a path or the parsed document); a known entry gets a
        new release. Every validation problem comes back at once in a 422."""
        document = (
            dict(codemeta)
            if isinstance(codemeta, Mapping)
            else json.loads(Path(codemeta).read_text(encoding="utf-8"))
        )
        params = {"project": project} if project else None
        return dict(self._s.json("POST", "/catalogue/software", json=document, params=params))


@dataclass(frozen=True)
class Publication:
    """A published Zenodo deposition."""

    doi: str
    deposition_id: str
    record_id: int | None
    html_url: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class Zenodo:
    """``Client().zenodo``: publish files or a run's outputs with a DOI; import records."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def set_token(self, token: str) -> None:
        """Register your personal Zenodo token with the VRE (stored encrypted, once)."""
        self._s.request("PUT", "/zenodo/credentials", json={"token": token})

    def publish(
        self,
        source: Run | str | Iterable[str],
        metadata: Mapping[str, Any],
        *,
        timeout: float = 300,
    ) -> Publication:
        """Deposit a run's outputs (a :class:`~vre.workflows.Run` or its id) or DIDs with
        ``metadata`` (Zenodo's: title, upload_type, description, creators, license…),
        wait until the files are uploaded, publish, and return the DOI."""
        from vre.workflows import Run

        body: dict[str, Any] = {"metadata": dict(metadata)}
        if isinstance(source, Run):
            body["run_id"] = source.id
        elif isinstance(source, str) and ":" not in source:
            body["run_id"] = source
        else:
            body["dids"] = [source] if isinstance(source, str) else list(source)
        created = self._s.json("POST", "/zenodo/depositions", json=body)
        path = f"/zenodo/depositions/{q(created['id'])}"
        state = _wait(
            self._s,
            path,
            lambda b: b["state"] != "uploading",
            timeout=timeout,
            what=f"deposition {created['id']}",
        )
        if state["state"] not in ("ready", "published"):
            error = state.get("error") or {}
            raise VreError(
                f"deposition {created['id']} is {state['state']}: "
                f"{error.get('detail') or state.get('warnings')}"
            )
        published = self._s.json("POST", f"{path}/publish")
        return Publication(
            doi=published["doi"],
            deposition_id=published["id"],
            record_id=published.get("record_id"),
            html_url=published.get("html_url"),
            raw=published,
        )

    def import_record(
        self,
        doi: str | int,
        *,
        project: str | None = None,
        scope: str | None = None,
        dataset: str | None = None,
        wait: bool = True,
        timeout: float = 300,
    ) -> dict[str, Any]:
        """Import a Zenodo record's files into the Data Lake (a project's scope, or
        ``scope``), as a dataset; returns the import with its files' DIDs."""
        if scope is None:
            if project is None:
                scope = self._s.json("GET", "/datalake/scopes/mine")["scope"]
            else:
                scope = f"proj.{project}"
        body: dict[str, Any] = {"scope": scope}
        body["record_id" if isinstance(doi, int) else "doi"] = doi
        if dataset:
            body["dataset"] = dataset
        started = self._s.json("POST", "/zenodo/imports", json=body)
        if not wait:
            return dict(started)
        done = _wait(
            self._s,
            f"/zenodo/imports/{q(started['id'])}",
            lambda b: b["state"] not in ("queued", "running"),
            timeout=timeout,
            what=f"import {started['id']}",
        )
        if done["state"] != "completed":
            error = done.get("error") or {}
            raise VreError(f"import {started['id']} {done['state']}: {error.get('detail')}")
        return done

    def records(self, text: str = "", **filters: Any) -> dict[str, Any]:
        """Search Zenodo's records (through the VRE)."""
        params = {"q": text, **filters} if text else dict(filters)
        return dict(self._s.json("GET", "/zenodo/records", params=params))


class Ivoa:
    """``Client().ivoa``: the VO services the VRE lists, as pyvo objects (extra ``[ivoa]``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def services(self) -> list[dict[str, Any]]:
        """The VO services of this deployment (name, type, URL)."""
        return list(self._s.json("GET", "/ivoa/services")["items"])

    def tap(self, name: str, *, send_token: bool = False) -> pyvo.dal.TAPService:
        """A pyvo ``TAPService`` for the listed service ``name``.

        With ``send_token=True`` the session sends your VRE token, and only to that
        service's own origin (for a TAP service of the same IAM); by default nothing is sent.
        """
        import pyvo
        import requests

        service = self._s.json("GET", f"/ivoa/services/{q(name)}")
        if service["type"] != "tap":
            raise VreError(f"{name} is a {service['type']} service, not TAP")
        session = _OriginBearerSession(service["url"], self._s.token if send_token else None)
        assert isinstance(session, requests.Session)
        return pyvo.dal.TAPService(service["url"], session=session)

    def query(
        self,
        service: str,
        adql: str,
        *,
        destination: Mapping[str, Any],
        maxrec: int | None = None,
    ) -> dict[str, Any]:
        """Run a query at the VRE, its result table written into the Data Lake
        (``destination``: ``{"project" or "scope", "name", "format"}``)."""
        body: dict[str, Any] = {"service": service, "adql": adql, "destination": dict(destination)}
        if maxrec is not None:
            body["maxrec"] = maxrec
        return dict(self._s.json("POST", "/ivoa/queries", json=body))


def _OriginBearerSession(url: str, source: Any) -> Any:  # noqa: N802 - a class factory
    import requests

    class OriginBearerSession(requests.Session):
        """A requests session adding the bearer token only for ``url``'s origin."""

        def __init__(self) -> None:
            super().__init__()
            self._origin = origin(httpx.URL(url))

        def request(self, method: str | bytes, target: str | bytes, **kwargs: Any) -> Any:  # type: ignore[override]
            token = source() if source else None
            destination = target.decode() if isinstance(target, bytes) else target
            if token and origin(httpx.URL(destination)) == self._origin:
                headers = dict(kwargs.pop("headers", None) or {})
                headers["Authorization"] = f"Bearer {token}"
                kwargs["headers"] = headers
            return super().request(
                method.decode() if isinstance(method, bytes) else method, destination, **kwargs
            )

        def rebuild_auth(self, prepared: Any, response: Any) -> None:
            super().rebuild_auth(prepared, response)  # drops Authorization across hosts
            if origin(httpx.URL(prepared.url)) != self._origin:
                prepared.headers.pop("Authorization", None)

    return OriginBearerSession()


@dataclass(frozen=True)
class ProvenanceGraph:
    """The provenance around an entity: PROV nodes (entities, activities, agents) and edges."""

    root: str
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    truncated: bool = False

    def node(self, node_id: str) -> dict[str, Any]:
        """A node by id (``did:scope:name``, ``run:<id>``, ``doi:<doi>``…)."""
        return next(n for n in self.nodes if n["id"] == node_id)

    def __str__(self) -> str:
        lines = [f"provenance of {self.root}:"]
        labels = {n["id"]: n.get("label") or n["id"] for n in self.nodes}
        lines += [
            f"  {labels.get(e['source'], e['source'])} --{e['relation']}--> "
            f"{labels.get(e['target'], e['target'])}"
            for e in self.edges
        ]
        return "\n".join(lines)


def entity_id(entity: Any) -> str:
    """An entity id for ``/provenance``: a :class:`~vre.workflows.Run` → ``run:<id>``, a
    ``scope:name`` DID → ``did:scope:name``; ids with a kind prefix pass unchanged."""
    from vre.workflows import Run

    if isinstance(entity, Run):
        return f"run:{entity.id}"
    if isinstance(entity, Publication):
        return f"doi:{entity.doi.lower()}"
    text = str(entity)
    kind = text.split(":", 1)[0]
    if kind in ("did", "run", "doi", "project", "agent", "user", "deposition", "query", "import"):
        return text
    return f"did:{text}"


def provenance(
    session: Session, entity: Any, *, direction: str = "up", depth: int = 5, prov_json: bool = False
) -> Any:
    """See :meth:`vre.Client.provenance`."""
    params = {"entity": entity_id(entity), "direction": direction, "depth": depth}
    if prov_json:
        return session.json("GET", "/provenance", params={**params, "format": "prov-json"})
    body = session.json("GET", "/provenance", params=params)
    return ProvenanceGraph(
        root=body["root"], nodes=body["nodes"], edges=body["edges"], truncated=body["truncated"]
    )
