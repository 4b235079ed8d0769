"""The provenance graph as the API answers it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class Direction(StrEnum):
    """up: where it came from; down: what was derived from it."""

    UP = "up"
    DOWN = "down"


class ProvNode(BaseModel):
    """An entity (did, doi …) or an activity (run, upload, publish …)."""

    id: str = Field(examples=["did:proj.cta-dm:inputs/events.root"])
    category: Literal["entity", "activity"]
    type: str = Field(examples=["did", "run", "doi", "upload", "publish"])
    project: str | None
    label: str | None
    actor: str | None = Field(default=None, description="Who ran the activity (user name).")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    invalidated_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    depth: int = Field(description="Derivation steps from the root (0 for the root).")


class ProvEdge(BaseModel):
    """``used`` (activity → entity) or ``wasGeneratedBy`` (entity → activity)."""

    source: str
    target: str
    relation: Literal["used", "wasGeneratedBy"]


class ProvenanceGraph(BaseModel):
    """The part of the graph reachable from ``root`` that the caller may read."""

    root: str
    direction: Direction
    depth: int
    nodes: list[ProvNode]
    edges: list[ProvEdge]
    truncated: bool = Field(description="True when max_nodes cut the walk short.")
