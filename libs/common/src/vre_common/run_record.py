"""The run record: what a published run carries so that a DOI alone is enough to re-run it.

The workflows service builds it (``GET /runs/{id}/record``), the zenodo service publishes it
as ``vre-run-record.json`` beside the outputs, and a reproduction reads it back from the
record. The format is versioned (``schema_version``); readers refuse a newer major version.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RUN_RECORD_FILENAME = "vre-run-record.json"
RUN_RECORD_KIND: Literal["vre-run-record"] = "vre-run-record"
RUN_RECORD_SCHEMA_VERSION = 1


def vre_version() -> str:
    """The version of the VRE code that made a record (its common library's version)."""
    try:
        return importlib.metadata.version("vre-common")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


class _Tolerant(BaseModel):
    # Records written by a later minor version may carry more fields: keep reading them.
    model_config = ConfigDict(extra="ignore")


class RecordedImage(_Tolerant):
    """A container image a step ran in; ``digest`` when the reference pins one."""

    name: str
    digest: str | None = Field(default=None, description="sha256:<hex> when known.")


class RecordedFile(_Tolerant):
    """An input or output file with the checksums the Data Lake records."""

    path: str = Field(description="Its path in the run's workspace.")
    did: str | None = Field(default=None, description="Its Data Lake DID (scope:name).")
    kind: Literal["did", "upload", "inline", "output"] = "output"
    bytes: int | None = None
    adler32: str | None = None
    md5: str | None = None


class RecordedStep(_Tolerant):
    """A step as it ran."""

    name: str
    image: str | None = None
    commands: list[str] = Field(default_factory=list)


class RunRecord(_Tolerant):
    """Everything needed to run a published run again and to check its outputs."""

    kind: Literal["vre-run-record"] = RUN_RECORD_KIND
    schema_version: int = RUN_RECORD_SCHEMA_VERSION
    vre_version: str = Field(default_factory=vre_version)
    run_id: str
    name: str
    workflow_type: str
    backend: str
    spec: dict[str, Any] = Field(description="The reana.yaml as the run used it (JSON).")
    spec_sha256: str = Field(description="SHA-256 of the canonical JSON of ``spec``.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    images: list[RecordedImage] = Field(default_factory=list)
    files: dict[str, str] = Field(
        default_factory=dict, description="Inline text files (code) by workspace path."
    )
    inputs: list[RecordedFile] = Field(default_factory=list)
    outputs: list[RecordedFile] = Field(default_factory=list)
    steps: list[RecordedStep] = Field(default_factory=list)
    created_at: datetime | None = None
    finished_at: datetime | None = None

    def spec_intact(self) -> bool:
        """Whether ``spec`` still has the recorded ``spec_sha256``."""
        return canonical_sha256(self.spec) == self.spec_sha256

    def to_bytes(self) -> bytes:
        """Stable JSON (sorted keys): the same run gives the same bytes and md5."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True).encode()


def canonical_sha256(spec: Any) -> str:
    """SHA-256 of a specification's canonical JSON (sorted keys, no spaces, UTF-8): the rule
    of the workflows service's ``spec_sha256`` (a workflows test pins the two together)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def image_of(reference: str) -> RecordedImage:
    """An image reference with its digest split off when it pins one (``name@sha256:…``)."""
    _, at, digest = reference.partition("@")
    return RecordedImage(name=reference, digest=digest if at and digest else None)


__all__ = [
    "RUN_RECORD_FILENAME",
    "RUN_RECORD_KIND",
    "RUN_RECORD_SCHEMA_VERSION",
    "RecordedFile",
    "RecordedImage",
    "RecordedStep",
    "RunRecord",
    "canonical_sha256",
    "image_of",
    "vre_version",
]
