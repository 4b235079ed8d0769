"""Provenance ids: ``did:<scope>:<name>``, ``run:<id>``, ``doi:10.…`` and how to check one."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from vre_common.errors import InvalidInputError
from vre_common.types import VISIBLE

ENTITY_ID_MAX = 600
ENTITY_ID_PATTERN = rf"^[a-z][a-z0-9-]*:{VISIBLE}+$"
ENTITY_ID_RE = re.compile(ENTITY_ID_PATTERN)
"""A provenance id, as the OpenAPI document states it and ``ENTITY_ID_RE`` checks it (at most
ENTITY_ID_MAX characters)."""
ENTITY_QUERY_PATTERN = rf"^(?!did:[^:]*$)[a-z][a-z0-9-]*:{VISIBLE}+$"
"""An entity to walk from (:func:`check_entity_id`: a DID id has a scope and a name)."""
ProvenanceId = Annotated[
    str, Field(max_length=ENTITY_ID_MAX, json_schema_extra={"pattern": ENTITY_ID_PATTERN})
]


def did_id(scope: str, name: str) -> str:
    """The provenance id of a Data Lake DID."""
    return f"did:{scope}:{name}"


def run_id(run: str) -> str:
    """The provenance id of a workflow run."""
    return f"run:{run}"


def doi_id(doi: str) -> str:
    """The provenance id of a DOI (``10.5281/zenodo.1`` or ``https://doi.org/10.…``)."""
    doi = doi.removeprefix("https://doi.org/").removeprefix("doi:")
    return f"doi:{doi.lower()}"


def id_type(entity: str) -> str:
    """The prefix of an id: ``did``, ``run``, ``doi`` …"""
    return entity.split(":", 1)[0]


def check_entity_id(entity: str) -> str:
    """Return ``entity`` if it is a well-formed provenance id, else raise 422."""
    if len(entity) > ENTITY_ID_MAX or not ENTITY_ID_RE.fullmatch(entity):
        raise InvalidInputError(
            f"{entity[:80]!r} is not a provenance id (did:<scope>:<name>, run:<id>, doi:10.…)",
            errors=[{"loc": ["entity"], "msg": "malformed provenance id", "type": "value_error"}],
        )
    if entity.startswith("did:") and entity.count(":") < 2:
        raise InvalidInputError("a DID id is did:<scope>:<name>")
    return entity
