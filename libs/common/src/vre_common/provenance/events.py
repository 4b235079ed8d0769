"""What a service reports it did: an :class:`Event` (an activity that used some entities and
generated others), the batch the gateway ingests and its answer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from vre_common.auth import Principal
from vre_common.logging import current_request_id
from vre_common.provenance.ids import ENTITY_ID_MAX, ENTITY_ID_RE, ProvenanceId


class EventKind(StrEnum):
    """What happened."""

    UPLOAD = "upload"  # generated: the uploaded file DIDs
    ATTACH = "attach"  # used: the attached DIDs; generated: the dataset/container
    RUN_STARTED = "run.started"  # activity run:<id>; used: the input DIDs
    RUN_FINISHED = "run.finished"  # activity run:<id>; generated: the output DIDs
    IMPORT = "import"  # used: doi:…; generated: the imported DIDs
    QUERY = "query"  # used: the VO service (ivo://… or its URL), uploaded DIDs; generated: result
    PUBLISH = "publish"  # used: the published DIDs (or run:<id>); generated: doi:…
    DELETE = "delete"  # used: the deleted DIDs (they stay in the graph, marked invalidated)
    REPRODUCTION = "reproduction"  # used: doi:… reproduced; generated: the re-run's outputs


_RUN_KINDS = (EventKind.RUN_STARTED, EventKind.RUN_FINISHED)
AttributeValue = str | int | float | bool | None


class Event(BaseModel):
    """One thing a service did, as recorded in the provenance graph and the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(description="Unique per event: the gateway deduplicates by it.")
    kind: EventKind
    service: str = Field(max_length=32, examples=["datalake"])
    actor: str = Field(max_length=512, description="The acting user's key: 'iss|sub'.")
    actor_name: str | None = Field(default=None, max_length=255)
    project: str | None = Field(
        default=None, max_length=32, description="The project's slug (DIDs map by scope)."
    )
    time: AwareDatetime
    request_id: str | None = Field(default=None, max_length=128)
    activity: str | None = Field(
        default=None,
        max_length=ENTITY_ID_MAX,
        description="The activity's id; run events must give run:<id>; default <kind>:<id>.",
    )
    used: list[ProvenanceId] = Field(default_factory=list, max_length=10_000)
    generated: list[ProvenanceId] = Field(default_factory=list, max_length=10_000)
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Facts about the activity (status, workflow …)."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Human titles of entities, by id."
    )

    @field_validator("used", "generated")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for entity in value:
            if len(entity) > ENTITY_ID_MAX or not ENTITY_ID_RE.fullmatch(entity):
                raise ValueError(f"{entity[:80]!r} is not a provenance id")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _activity(self) -> Event:
        if self.kind in _RUN_KINDS and not (self.activity or "").startswith("run:"):
            raise ValueError(f"a {self.kind.value} event names its activity run:<id>")
        if self.activity is not None and not ENTITY_ID_RE.fullmatch(self.activity):
            raise ValueError("activity is not a provenance id")
        return self

    @property
    def activity_id(self) -> str:
        """The activity node this event describes."""
        return self.activity or f"{self.kind.value}:{self.id}"

    @classmethod
    def create(
        cls,
        kind: EventKind,
        actor: Principal | str,
        *,
        service: str,
        project: str | None = None,
        activity: str | None = None,
        used: Sequence[str] = (),
        generated: Sequence[str] = (),
        attributes: dict[str, AttributeValue] | None = None,
        labels: dict[str, str] | None = None,
        time: datetime | None = None,
    ) -> Event:
        """A new event now, with a fresh id and the current request id."""
        return cls(
            id=uuid.uuid4(),
            kind=kind,
            service=service,
            actor=actor.key if isinstance(actor, Principal) else actor,
            actor_name=actor.username if isinstance(actor, Principal) else None,
            project=project,
            time=time or datetime.now(UTC),
            request_id=current_request_id(),
            activity=activity,
            used=list(used),
            generated=list(generated),
            attributes=attributes or {},
            labels=labels or {},
        )


class EventBatch(BaseModel):
    """The body of ``POST /provenance/events``."""

    events: list[Event] = Field(max_length=1000)


class IngestResult(BaseModel):
    """What the gateway did with a batch: new events and already-known ones."""

    accepted: int
    duplicates: int
