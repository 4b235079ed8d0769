"""Audit log entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    """One write: who, what, when, with which request id."""

    id: int
    at: datetime
    actor: str = Field(description="The actor's key 'iss|sub'.")
    actor_name: str | None
    source: str = Field(description="'gateway' or the service that reported the event.")
    action: str = Field(examples=["member.add", "datalake.upload"])
    target: str | None
    request_id: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """Newest first; pass ``next_before`` as ``before`` for the next page."""

    items: list[AuditEntry]
    next_before: int | None
