"""``vre.Client``: one object for the whole VRE API."""

from __future__ import annotations

from typing import Any

import httpx

from vre._http import Session
from vre.config import vre_url
from vre.datalake import Datalake
from vre.services import Catalogue, Ivoa, Projects, ProvenanceGraph, Zenodo, provenance
from vre.workflows import Workflows


class Client:
    """The VRE from Python.

    ``url`` defaults to ``VRE_URL`` (or the config file); the token is found by WLCG
    Bearer Token Discovery before each request, unless ``token=`` is given. The token is sent
    only to the VRE's own origin.

    >>> import vre
    >>> with vre.Client() as client:
    ...     client.me()["username"]
    'alice'
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        verify: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.session = Session(
            url or vre_url(), token=token, timeout=timeout, transport=transport, verify=verify
        )
        self.url = self.session.url
        #: Files, datasets, metadata, rules (:class:`vre.datalake.Datalake`).
        self.datalake = Datalake(self.session)
        #: Runs (:class:`vre.workflows.Workflows`).
        self.workflows = Workflows(self.session)
        #: Science Projects (:class:`vre.services.Projects`).
        self.projects = Projects(self.session)
        #: Software catalogue (:class:`vre.services.Catalogue`).
        self.catalogue = Catalogue(self.session)
        #: Zenodo publishing and imports (:class:`vre.services.Zenodo`).
        self.zenodo = Zenodo(self.session)
        #: VO services (:class:`vre.services.Ivoa`).
        self.ivoa = Ivoa(self.session)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.session.close()

    def me(self) -> dict[str, Any]:
        """Who the token says you are: username, groups, scopes, seconds until it expires."""
        return dict(self.session.json("GET", "/me"))

    def search(self, text: str, *, limit: int = 20) -> dict[str, Any]:
        """One search over projects, files, runs, software and VO services."""
        return dict(self.session.json("GET", "/search", params={"q": text, "limit": limit}))

    def provenance(
        self, entity: Any, *, direction: str = "up", depth: int = 5, prov_json: bool = False
    ) -> Any:
        """The provenance graph around ``entity`` (a DID ``scope:name``, a Run, a
        Publication, or an id such as ``doi:10.5281/…``): ``direction="up"`` walks to what it
        came from, ``"down"`` to what came of it. Returns a :class:`ProvenanceGraph` (nodes,
        edges), or the W3C PROV-JSON document with ``prov_json=True``."""
        return provenance(
            self.session, entity, direction=direction, depth=depth, prov_json=prov_json
        )


__all__ = ["Client", "ProvenanceGraph"]
