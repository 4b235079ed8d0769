"""API models of the datalake service (what handlers return and backends speak)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vre_common.types import (
    DID_NAME_PATTERN,
    DID_PATTERN,
    SCOPE_PATTERN,
    LifetimeSeconds,
    NonNegativeInt,
    stated,
)
from vre_datalake.errors import InvalidNameError
from vre_datalake.names import check_meta_key, check_rse, parse_did

DidType = Literal["file", "dataset", "container"]
CollectionType = Literal["dataset", "container"]
ReplicaState = Literal[
    "AVAILABLE", "UNAVAILABLE", "COPYING", "BEING_DELETED", "BAD", "TEMPORARY_UNAVAILABLE"
]
RuleState = Literal["OK", "REPLICATING", "STUCK", "SUSPENDED", "WAITING_APPROVAL", "INJECT"]
LockState = Literal["OK", "REPLICATING", "STUCK"]

MAX_DIDS_PER_REQUEST = 1000

# The file the documents' examples show, and where it lies on an RSE (its url and path).
_EXAMPLE_FILE: dict[str, Any] = {
    "scope": "user.alice",
    "name": "run42/events.fits",
    "bytes": 1048576,
    "adler32": "0b5e01d7",
    "md5": "9e107d9d372bb6826bd81d3542a419d6",
}


def _example_pfn(rse: str) -> dict[str, str]:
    path = f"/data/{rse}/user/alice/1f/0a/run42/events.fits"
    return {"url": f"file://localhost{path}", "path": path}


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        try:
            check_meta_key(key)
        except InvalidNameError as exc:
            raise ValueError(exc.detail) from None
        if isinstance(item, dict | list):
            raise ValueError(f"metadata value of {key!r} must be a string, number or boolean")
    return value


MetaKey = Annotated[str, Field(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
"""A metadata key (vre_datalake.names.check_meta_key)."""
MetaValue = str | int | float | bool | None
"""A metadata value: a JSON scalar."""
Metadata = Annotated[
    dict[MetaKey, MetaValue], Field(json_schema_extra={"additionalProperties": False})
]

DidString = Annotated[str, Field(description="`scope:name`", json_schema_extra=stated(DID_PATTERN))]


def _check_dids(value: list[str]) -> list[str]:
    for index, did in enumerate(value):
        try:
            parse_did(did, f"dids.{index}")
        except InvalidNameError as exc:
            raise ValueError(exc.detail) from None
    return value


class DidRef(BaseModel):
    """A data identifier."""

    scope: str
    name: str

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}"


@dataclass(frozen=True)
class NewReplica:
    """A file written to an RSE, to be registered: its DID, size, checksums and PFN."""

    did: DidRef
    size: int
    adler32: str
    md5: str
    pfn: str | None


class Did(BaseModel):
    """A file, dataset or container, with the metadata Rucio keeps for it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scope": "user.alice",
                    "name": "run42/events.fits",
                    "type": "file",
                    "bytes": 1048576,
                    "adler32": "0b5e01d7",
                    "md5": "9e107d9d372bb6826bd81d3542a419d6",
                    "account": "alice",
                    "created_at": "2026-11-25T13:34:11Z",
                    "metadata": {"datatype": "events", "run_number": 42},
                }
            ]
        }
    )

    scope: str
    name: str
    type: DidType
    bytes: int | None = None
    length: int | None = Field(default=None, description="Number of files (collections).")
    adler32: str | None = None
    md5: str | None = None
    account: str | None = None
    open: bool | None = Field(default=None, description="Collections: still accepts content.")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Metadata set on the DID (DID-column keys; arbitrary keys on PostgreSQL).",
    )


class DidPage(BaseModel):
    """One page of a DID listing (ask for `application/x-ndjson` to stream all results)."""

    items: list[Did]
    offset: int
    limit: int
    next_offset: int | None = Field(
        default=None, description="Pass as `offset` for the next page; null on the last one."
    )


class DidCreate(BaseModel):
    """A new dataset or container."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "run42", "type": "dataset", "metadata": {"campaign": "2026A"}}]
        },
    )

    name: str = Field(max_length=250, json_schema_extra=stated(DID_NAME_PATTERN))
    type: CollectionType = "dataset"
    metadata: Metadata = Field(default_factory=dict)
    lifetime: LifetimeSeconds | None = Field(
        default=None, description="Seconds until Rucio expires the DID (none: never)."
    )

    _meta = field_validator("metadata")(_check_metadata)


class DidList(BaseModel):
    """DIDs to attach or detach, as `scope:name`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"dids": ["user.alice:run42/events.fits"]}]},
    )

    dids: list[DidString] = Field(min_length=1, max_length=MAX_DIDS_PER_REQUEST)

    _dids = field_validator("dids")(_check_dids)


class MetadataUpdate(BaseModel):
    """Metadata keys to set on one DID (other keys keep their values)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"metadata": {"datatype": "events", "run_number": 42}}]},
    )

    metadata: Metadata = Field(min_length=1, max_length=100)

    _meta = field_validator("metadata")(_check_metadata)


class BulkMetadataItem(BaseModel):
    """Metadata for one DID of a bulk update."""

    model_config = ConfigDict(extra="forbid")

    did: DidString
    metadata: Metadata = Field(min_length=1, max_length=100)

    _meta = field_validator("metadata")(_check_metadata)

    @field_validator("did")
    @classmethod
    def _did(cls, value: str) -> str:
        try:
            parse_did(value)
        except InvalidNameError as exc:
            raise ValueError(exc.detail) from None
        return value


class BulkMetadataUpdate(BaseModel):
    """Metadata for many DIDs at once (all-or-nothing in Rucio)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"did": "user.alice:a.fits", "metadata": {"run_number": 1}},
                        {"did": "user.alice:b.fits", "metadata": {"run_number": 2}},
                    ]
                }
            ]
        },
    )

    items: list[BulkMetadataItem] = Field(min_length=1, max_length=MAX_DIDS_PER_REQUEST)


class Replica(BaseModel):
    """One copy of a file on one RSE."""

    rse: str
    state: str
    url: str | None = Field(default=None, description="The PFN (file://, https://…).")
    path: str | None = Field(default=None, description="Local path, for file:// replicas.")


class FileReplicas(BaseModel):
    """A file and its replicas."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE_FILE,
                    "replicas": [
                        {"rse": "VRE-DISK-1", "state": "AVAILABLE", **_example_pfn("VRE-DISK-1")}
                    ],
                }
            ]
        }
    )

    scope: str
    name: str
    bytes: int | None = None
    adler32: str | None = None
    md5: str | None = None
    replicas: list[Replica] = Field(default_factory=list)


class UploadedFile(BaseModel):
    """A file written to an RSE and registered in Rucio."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE_FILE,
                    "rse": "VRE-DISK-1",
                    "pfn": _example_pfn("VRE-DISK-1")["url"],
                    "dataset": "user.alice:run42",
                    "created": True,
                }
            ]
        }
    )

    scope: str
    name: str
    bytes: int
    adler32: str
    md5: str
    rse: str
    pfn: str | None = None
    dataset: str | None = None
    created: bool = Field(
        default=True, description="False when the same content was already registered."
    )


class RseSpace(BaseModel):
    """Space on an RSE as reported by one source (`rucio`: what Rucio accounts; `storage`)."""

    source: str
    used_bytes: int | None = None
    free_bytes: int | None = None
    total_bytes: int | None = None
    files: int | None = None


class Rse(BaseModel):
    """A Rucio Storage Element."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "VRE-DISK-1",
                    "rse_type": "DISK",
                    "deterministic": True,
                    "volatile": False,
                    "availability_read": True,
                    "availability_write": True,
                    "availability_delete": True,
                    "schemes": ["file"],
                    "attributes": {"vre_kind": "posix"},
                    "space": [{"source": "rucio", "used_bytes": 0, "files": 0}],
                }
            ]
        }
    )

    name: str
    rse_type: str | None = None
    deterministic: bool | None = None
    volatile: bool | None = None
    availability_read: bool | None = None
    availability_write: bool | None = None
    availability_delete: bool | None = None
    schemes: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    space: list[RseSpace] = Field(default_factory=list)


class Scope(BaseModel):
    """A scope (namespace of DIDs)."""

    name: str
    account: str | None = None
    mine: bool = Field(default=False, description="The caller may write in it.")
    project: str | None = Field(
        default=None, description="The Science Project whose scope this is (its slug)."
    )


class ScopeCreate(BaseModel):
    """A project scope the gateway asks for when a project is created."""

    scope: str = Field(
        min_length=1,
        max_length=25,
        description="`<prefix><slug>`.",
        examples=["proj.cta-dm"],
        json_schema_extra=stated(SCOPE_PATTERN),
    )
    project: str = Field(
        min_length=1,
        max_length=25,
        pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
        description="The project's slug (the scope's suffix).",
        examples=["cta-dm"],
    )
    quota_bytes: NonNegativeInt | None = Field(
        default=None, description="Limit per RSE (None: the datalake's default)."
    )


class ProjectScope(BaseModel):
    """A project's scope, the Rucio account that owns it, and its limit per RSE."""

    scope: str
    project: str
    account: str
    quota_bytes: int | None


class Identity(BaseModel):
    """The Rucio account the caller acts as, and the caller's own scope."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"account": "alice", "scope": "user.alice"}]}
    )

    account: str
    scope: str


class RuleCreate(BaseModel):
    """A replication rule request."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dids": ["user.alice:run42"],
                    "rse_expression": "VRE-DISK-2",
                    "copies": 1,
                    "lifetime": 86400,
                    "comment": "keep for the analysis",
                }
            ]
        },
    )

    dids: list[DidString] = Field(min_length=1, max_length=MAX_DIDS_PER_REQUEST)
    rse_expression: str = Field(min_length=1, max_length=3000)
    copies: int = Field(default=1, strict=True, ge=1, le=100)
    lifetime: LifetimeSeconds | None = Field(default=None, description="Seconds; none: no expiry.")
    activity: str | None = Field(default=None, max_length=50)
    comment: str | None = Field(default=None, max_length=255)
    grouping: Literal["ALL", "DATASET", "NONE"] = "DATASET"

    _dids = field_validator("dids")(_check_dids)


class RuleUpdate(BaseModel):
    """Changes to a rule (only the lifetime for now)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"lifetime": 3600}]})

    lifetime: LifetimeSeconds | None = Field(
        description="Seconds from now until the rule expires (an integer ≥ 1, not a boolean); "
        "null removes the expiry."
    )


class RulesCreated(BaseModel):
    """Ids of the rules created (one per DID)."""

    ids: list[str]


class Lock(BaseModel):
    """A file held on an RSE by a rule."""

    scope: str
    name: str
    rse: str
    state: str
    bytes: int | None = None


class Rule(BaseModel):
    """A replication rule, with the bytes its locks hold."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "1e3a4b1c2d3e4f5a6b7c8d9e0f1a2b3c",
                    "account": "alice",
                    "scope": "user.alice",
                    "name": "run42",
                    "did_type": "dataset",
                    "rse_expression": "VRE-DISK-2",
                    "copies": 1,
                    "state": "OK",
                    "locks_ok": 3,
                    "locks_replicating": 0,
                    "locks_stuck": 0,
                    "locked_bytes": 3145728,
                    "expires_at": None,
                }
            ]
        }
    )

    id: str
    account: str
    scope: str
    name: str
    did_type: str | None = None
    rse_expression: str
    copies: int
    state: str
    error: str | None = None
    activity: str | None = None
    comment: str | None = None
    grouping: str | None = None
    locks_ok: int = 0
    locks_replicating: int = 0
    locks_stuck: int = 0
    locked_bytes: int | None = Field(
        default=None, description="Sum of the bytes of the rule's locks."
    )
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RuleWithLocks(Rule):
    """A rule and every lock it holds."""

    locks: list[Lock] = Field(default_factory=list)


class RseUsage(BaseModel):
    """The caller's usage and limit on one RSE."""

    rse: str
    used_bytes: int
    used_files: int
    limit_bytes: int | None = Field(description="None: no limit set (writes are refused).")
    remaining_bytes: int | None
    rse_free_bytes: int | None = Field(default=None, description="Free space the RSE reports.")


class Usage(BaseModel):
    """How much room the caller has, and where."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account": "alice",
                    "rses": [
                        {
                            "rse": "VRE-DISK-1",
                            "used_bytes": 1048576,
                            "used_files": 1,
                            "limit_bytes": 10737418240,
                            "remaining_bytes": 10736369664,
                        }
                    ],
                    "used_bytes": 1048576,
                    "limit_bytes": 10737418240,
                }
            ]
        }
    )

    account: str
    rses: list[RseUsage]
    used_bytes: int
    limit_bytes: int | None


class ResolveRequest(BaseModel):
    """DIDs to resolve into files and replicas."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"dids": ["user.alice:run42"], "rse_expression": "VRE-DISK-2"}]
        },
    )

    dids: list[DidString] = Field(min_length=1, max_length=MAX_DIDS_PER_REQUEST)
    rse_expression: str | None = Field(
        default=None, max_length=3000, description="Replicas on matching RSEs come first."
    )

    _dids = field_validator("dids")(_check_dids)


class ResolvedReplica(BaseModel):
    """Where a resolved file can be read."""

    rse: str
    url: str
    path: str | None = None
    preferred: bool = False


class ResolvedFile(BaseModel):
    """A file reached from a requested DID."""

    scope: str
    name: str
    bytes: int
    adler32: str | None = None
    md5: str | None = None
    parent: str | None = Field(default=None, description="The requested DID it came from.")
    replicas: list[ResolvedReplica] = Field(default_factory=list)


class ResolveResult(BaseModel):
    """Every file behind the requested DIDs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "files": [
                        {
                            **_EXAMPLE_FILE,
                            "parent": "user.alice:run42",
                            "replicas": [
                                {
                                    "rse": "VRE-DISK-2",
                                    **_example_pfn("VRE-DISK-2"),
                                    "preferred": True,
                                }
                            ],
                        }
                    ]
                }
            ]
        }
    )

    files: list[ResolvedFile]


def rse_field(value: str, field: str = "rse") -> str:
    """Validate an RSE query parameter."""
    return check_rse(value, field)
