"""API models of the zenodo service (requests, answers) and the store-level records."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vre_common.types import PositiveInt, check_exactly_one_of, exactly_one_of
from vre_zenodo.backends.base import ZenodoRecord

ImportState = Literal["queued", "running", "completed", "failed", "interrupted"]
ImportFileState = Literal["pending", "transferring", "done", "exists", "failed"]
DepositionState = Literal["uploading", "incomplete", "ready", "published", "discarded"]
DepositionFileState = Literal["pending", "uploading", "uploaded", "failed"]

_DID = re.compile(r"^[^:\s]+:[^\s]+$")
# Zenodo's legacy deposit metadata: upload types.
UploadType = Literal[
    "publication",
    "poster",
    "presentation",
    "dataset",
    "image",
    "video",
    "software",
    "lesson",
    "physicalobject",
    "other",
]


# ----------------------------------------------------------------------------- credentials


class CredentialsIn(BaseModel):
    """A personal Zenodo token to register for the caller."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"token": "<personal access token from Zenodo>"}]},
    )

    token: SecretStr = Field(
        min_length=8,
        max_length=4096,
        description="A Zenodo personal access token with the scopes deposit:write and "
        "deposit:actions. Stored encrypted; never returned or logged.",
    )

    @field_validator("token")
    @classmethod
    def _printable_ascii(cls, value: SecretStr) -> SecretStr:
        # It travels in an Authorization header: only visible ASCII can be sent there.
        if not re.fullmatch(r"[\x21-\x7e]+", value.get_secret_value()):
            raise ValueError("a token is printable ASCII without spaces")
        return value


class CredentialsStatus(BaseModel):
    """Whether the caller has a Zenodo token registered (never the token itself)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "registered": True,
                    "zenodo_url": "https://zenodo.org",
                    "created_at": "2026-11-20T10:00:00Z",
                    "updated_at": "2026-11-21T09:30:00Z",
                    "verified_at": "2026-11-21T09:30:00Z",
                }
            ]
        }
    )

    registered: bool
    zenodo_url: str = Field(description="The Zenodo the token is for.")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    verified_at: datetime | None = Field(
        default=None, description="When Zenodo last accepted it (at registration)."
    )


class StoredCredential(BaseModel):
    """A stored token, still encrypted."""

    owner: str
    token_encrypted: str
    zenodo_url: str
    created_at: datetime
    updated_at: datetime
    verified_at: datetime | None = None


# ----------------------------------------------------------------------------- metadata


class Creator(BaseModel):
    """A creator or contributor as Zenodo takes it."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, description="'Family, Given'.", examples=["Doe, Jane"])
    affiliation: str | None = None
    orcid: str | None = Field(default=None, examples=["0000-0002-1825-0097"])
    type: str | None = Field(default=None, description="Contributors only (e.g. ContactPerson).")


class RelatedIdentifier(BaseModel):
    """A related identifier (DOI, URL …) and the relation to it."""

    model_config = ConfigDict(extra="allow")

    identifier: str
    relation: str = Field(examples=["isSupplementTo", "isDerivedFrom"])
    resource_type: str | None = None


class DepositionMetadata(BaseModel):
    """Zenodo deposit metadata (the legacy deposit API's fields; others pass through).

    Zenodo requires ``upload_type``, ``title``, ``description`` and ``creators`` at the
    latest when publishing; it reports anything missing field by field.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "upload_type": "dataset",
                    "title": "CTA simulated event lists, run 42",
                    "description": "Event lists produced by the VRE workflow run 42.",
                    "creators": [{"name": "Doe, Jane", "affiliation": "INFN"}],
                    "license": "cc-by-4.0",
                    "keywords": ["CTA", "simulation"],
                    "version": "1.0",
                    "communities": [{"identifier": "escape2020"}],
                }
            ]
        },
    )

    upload_type: UploadType | None = None
    publication_type: str | None = None
    image_type: str | None = None
    title: str | None = None
    description: str | None = None
    creators: list[Creator] | None = None
    contributors: list[Creator] | None = None
    license: str | None = Field(default=None, examples=["cc-by-4.0", "mit"])
    version: str | None = None
    keywords: list[str] | None = None
    publication_date: date | None = None
    access_right: Literal["open", "embargoed", "restricted", "closed"] | None = None
    embargo_date: date | None = None
    access_conditions: str | None = None
    communities: list[dict[str, str]] | None = Field(
        default=None,
        description="[{identifier}] — a community curator must accept the submission.",
    )
    grants: list[dict[str, str]] | None = None
    related_identifiers: list[RelatedIdentifier] | None = None
    notes: str | None = None
    language: str | None = None

    def to_zenodo(self) -> dict[str, Any]:
        """The JSON Zenodo takes (unset fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


# ----------------------------------------------------------------------------- imports


class ImportCreate(BaseModel):
    """Import a Zenodo record's files into the Data Lake."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=exactly_one_of(
            "doi",
            "record_id",
            examples=[
                {"doi": "10.5281/zenodo.10726484", "scope": "user.alice"},
                {"record_id": 10726484, "scope": "user.alice", "rse": "VRE-DISK-1"},
            ],
        ),
    )

    doi: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="The record's DOI (doi.org URLs and 'doi:' are accepted).",
    )
    record_id: PositiveInt | None = Field(default=None, description="The Zenodo record id.")
    scope: str = Field(min_length=1, max_length=25, description="Destination Data Lake scope.")
    dataset: str | None = Field(
        default=None,
        min_length=1,
        max_length=250,
        description="Dataset to attach the files to (default zenodo-<record id>).",
    )
    rse: str | None = Field(default=None, description="Storage element to write to.")

    @model_validator(mode="after")
    def _one_source(self) -> ImportCreate:
        check_exactly_one_of(self, "doi", "record_id")
        return self


class ImportFile(BaseModel):
    """One file of an import and how far it got."""

    key: str = Field(description="The file's name in the Zenodo record.")
    did: str = Field(description="Its DID in the Data Lake (scope:name).")
    bytes: int
    md5: str | None
    bytes_done: int = 0
    state: ImportFileState = "pending"
    error: str | None = None


class Import(BaseModel):
    """An import job."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c0f7e-3c55-4a47-9a53-3f0cbd3d6a10",
                    "state": "running",
                    "owner": "alice",
                    "record_id": 10726484,
                    "doi": "10.5281/zenodo.10726484",
                    "title": "gammapy",
                    "version": "1.2",
                    "license": "bsd-3-clause",
                    "scope": "user.alice",
                    "dataset": "user.alice:zenodo-10726484",
                    "rse": None,
                    "total_bytes": 3145728,
                    "bytes_done": 1048576,
                    "files": [
                        {
                            "key": "gammapy-1.2.tar.gz",
                            "did": "user.alice:zenodo-10726484/gammapy-1.2.tar.gz",
                            "bytes": 3145728,
                            "md5": "9e107d9d372bb6826bd81d3542a419d6",
                            "bytes_done": 1048576,
                            "state": "transferring",
                            "error": None,
                        }
                    ],
                    "warnings": [],
                    "error": None,
                    "created_at": "2026-11-21T09:30:00Z",
                    "started_at": "2026-11-21T09:30:01Z",
                    "finished_at": None,
                }
            ]
        }
    )

    id: str
    state: ImportState
    owner: str = Field(description="User name of who started it.")
    record_id: int
    doi: str | None
    title: str
    version: str | None
    license: str | None
    scope: str
    dataset: str = Field(description="The dataset DID the files are attached to.")
    rse: str | None
    total_bytes: int
    bytes_done: int
    files: list[ImportFile]
    warnings: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = Field(
        default=None, description="Why the import failed, as a problem (type, title, detail)."
    )
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ImportList(BaseModel):
    """The caller's imports, newest first."""

    items: list[Import]


# ----------------------------------------------------------------------------- depositions


class DepositionSources(BaseModel):
    """Where the files of a deposition come from, and its metadata."""

    model_config = ConfigDict(extra="forbid")

    dids: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="Data Lake DIDs (scope:name): files, or datasets/containers (expanded).",
    )
    run_id: str | None = Field(
        default=None, description="A workflow run whose registered outputs are published."
    )
    metadata: DepositionMetadata | None = Field(
        default=None, description="Zenodo metadata (overrides what the catalogue gives)."
    )
    software_id: str | None = Field(
        default=None, description="A catalogue entry whose codemeta gives the metadata."
    )
    software_version: str | None = Field(
        default=None, description="Which release of the catalogue entry (default: latest)."
    )

    @field_validator("dids")
    @classmethod
    def _dids(cls, value: list[str]) -> list[str]:
        for did in value:
            if not _DID.match(did):
                raise ValueError(f"{did!r} is not a DID (scope:name)")
        return value


class DepositionCreate(DepositionSources):
    """A new deposition from Data Lake files or a run's outputs."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "dids": ["user.alice:results/plot.png", "user.alice:run42-outputs"],
                    "metadata": {
                        "upload_type": "dataset",
                        "title": "Run 42 results",
                        "description": "Outputs of run 42.",
                        "creators": [{"name": "Doe, Jane"}],
                        "license": "cc-by-4.0",
                    },
                },
                {"run_id": "0b7d6f0e-0d8c-4b2a-9d54-0b0b7d6f0e0d", "software_id": "gammapy"},
            ]
        },
    )

    @model_validator(mode="after")
    def _some_files(self) -> DepositionCreate:
        if not self.dids and not self.run_id:
            raise ValueError("give dids, a run_id, or both")
        return self


class VersionCreate(DepositionSources):
    """A new version of a published deposition.

    Without ``dids``/``run_id`` the previous version's files are kept; with them, the new
    version holds exactly those files. Metadata given here overrides the previous version's.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"metadata": {"version": "2.0"}}]},
    )


class MetadataUpdate(BaseModel):
    """New metadata for a deposition (fields given replace the current ones)."""

    model_config = ConfigDict(extra="forbid")

    metadata: DepositionMetadata


class DepositionFile(BaseModel):
    """One file of a deposition."""

    did: str = Field(description="Its Data Lake DID (scope:name).")
    filename: str = Field(description="Its name in the Zenodo deposition.")
    bytes: int
    md5: str | None
    bytes_done: int = 0
    state: DepositionFileState = "pending"
    error: str | None = None
    doi_written: bool = Field(
        default=False, description="Whether the DOI was set on the DID's metadata."
    )


class Deposition(BaseModel):
    """A deposition made through the VRE."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                    "state": "published",
                    "owner": "alice",
                    "zenodo_id": 1234567,
                    "record_id": 1234567,
                    "doi": "10.5281/zenodo.1234567",
                    "concept_doi": "10.5281/zenodo.1234566",
                    "title": "Run 42 results",
                    "html_url": "https://zenodo.org/records/1234567",
                    "metadata": {"title": "Run 42 results", "upload_type": "dataset"},
                    "sources": ["user.alice:run42-outputs"],
                    "run_id": None,
                    "software_id": None,
                    "previous_id": None,
                    "files": [
                        {
                            "did": "user.alice:run42/plot.png",
                            "filename": "plot.png",
                            "bytes": 52311,
                            "md5": "b1946ac92492d2347c6235b4d2611184",
                            "bytes_done": 52311,
                            "state": "uploaded",
                            "error": None,
                            "doi_written": True,
                        }
                    ],
                    "warnings": [],
                    "error": None,
                    "created_at": "2026-11-21T09:30:00Z",
                    "updated_at": "2026-11-21T09:31:00Z",
                    "published_at": "2026-11-21T09:31:00Z",
                }
            ]
        }
    )

    id: str
    state: DepositionState = Field(
        description="uploading (files being streamed), incomplete (an upload failed: retry), "
        "ready (publishable), published, discarded."
    )
    owner: str
    zenodo_id: int = Field(description="The deposition id at Zenodo.")
    record_id: int | None = None
    doi: str | None = None
    concept_doi: str | None = None
    title: str | None = None
    html_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list, description="The DIDs asked for.")
    run_id: str | None = None
    software_id: str | None = None
    previous_id: str | None = Field(
        default=None, description="The deposition this is a new version of."
    )
    files: list[DepositionFile] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None


class StoredDeposition(Deposition):
    """A deposition with what only the service needs."""

    owner_key: str
    bucket_url: str | None
    replace_files: bool = Field(
        default=False, description="Remove bucket files that are not among the wanted ones."
    )

    def public(self) -> Deposition:
        """The API view."""
        return Deposition.model_validate(self.model_dump(include=set(Deposition.model_fields)))


class DepositionList(BaseModel):
    """The caller's depositions, newest first."""

    items: list[Deposition]


class AccountDeposition(BaseModel):
    """A deposition in the caller's Zenodo account (made through the VRE or not)."""

    zenodo_id: int
    state: str
    submitted: bool
    title: str | None
    doi: str | None
    record_id: int | None
    html_url: str | None
    files: int


class AccountDepositionList(BaseModel):
    """Depositions of the caller's Zenodo account, newest first."""

    items: list[AccountDeposition]


# ----------------------------------------------------------------------------- records

Record = ZenodoRecord


class RecordPage(BaseModel):
    """One page of a Zenodo records search."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 10726484,
                            "doi": "10.5281/zenodo.10726484",
                            "title": "gammapy",
                            "version": "1.2",
                            "license": "bsd-3-clause",
                            "resource_type": "software",
                            "communities": ["escape2020"],
                            "files": [
                                {
                                    "key": "gammapy-1.2.tar.gz",
                                    "size": 3145728,
                                    "md5": "9e107d9d372bb6826bd81d3542a419d6",
                                    "url": "https://zenodo.org/api/records/10726484/files/"
                                    "gammapy-1.2.tar.gz/content",
                                }
                            ],
                        }
                    ],
                    "total": 1,
                    "page": 1,
                    "size": 10,
                    "has_next": False,
                    "page_size_cap": 25,
                }
            ]
        }
    )

    items: list[Record]
    total: int = Field(description="Hits as Zenodo counted them.")
    page: int
    size: int
    has_next: bool
    page_size_cap: int = Field(
        description="The largest page Zenodo serves this caller (25 anonymous, 100 with a "
        "registered token); larger pages are assembled from several Zenodo pages."
    )


# ----------------------------------------------------------------------------- reproductions

ReproductionState = Literal[
    "queued", "checking", "running", "comparing", "finished", "cancelled", "interrupted"
]


class ReproductionCreate(BaseModel):
    """Reproduce a published result from its DOI."""

    model_config = ConfigDict(extra="forbid")

    doi: str = Field(
        min_length=3, max_length=255, description="The record's DOI (or https://doi.org/…)."
    )
    project: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$",
        description="The Science Project the re-run belongs to (its scope receives the "
        "outputs and any input taken from the record); None: your own scope.",
    )
    backend: Literal["local", "reana", "slurm"] | None = Field(
        default=None, description="Where the re-run's steps run (default: the deployment's)."
    )
    tolerance: float = Field(
        default=1e-6,
        ge=0,
        le=1,
        description="Relative tolerance of the numeric comparison of tables.",
    )


class InputCheck(BaseModel):
    """How one recorded input was found for the re-run."""

    path: str
    did: str | None = Field(default=None, description="The DID the original run read.")
    md5: str | None = None
    source: Literal["data lake", "record", "inline", "missing", "changed"] = Field(
        description="data lake: the same DID with the same checksums; record: the file "
        "published in the record; inline: code carried by the run record; missing/changed: "
        "not available as it was (the reproduction stops before running)."
    )
    used: str | None = Field(default=None, description="The DID the re-run reads.")
    detail: str | None = None


class Reproduction(BaseModel):
    """A reproduction job: the record, the inputs found, the re-run, the comparison."""

    id: str
    doi: str
    record_id: int
    project: str | None = None
    state: ReproductionState
    verdict: (
        Literal["reproduced", "reproduced within tolerance", "differs", "could not run"] | None
    ) = None
    reason: str | None = Field(default=None, description="Why it could not run.")
    tolerance: float
    original_run_id: str | None = None
    run_id: str | None = Field(default=None, description="The re-run (a workflows run).")
    inputs: list[InputCheck] = Field(default_factory=list)
    files: list[dict[str, Any]] = Field(
        default_factory=list, description="Each output compared (FileComparison)."
    )
    created_at: datetime
    finished_at: datetime | None = None


class ReproductionList(BaseModel):
    """The caller's reproductions, newest first."""

    items: list[Reproduction]
