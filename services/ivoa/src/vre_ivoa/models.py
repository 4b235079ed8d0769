"""API models of the ivoa service: VO services, their tables, query jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vre_ivoa.config import ServiceType

ResultFormat = Literal["votable", "fits", "parquet"]
QueryMode = Literal["auto", "sync", "async"]
Phase = Literal["QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "INTERRUPTED"]
FINAL_PHASES: frozenset[str] = frozenset({"COMPLETED", "ERROR", "ABORTED", "INTERRUPTED"})
EXTENSIONS: dict[str, str] = {"votable": "vot", "fits": "fits", "parquet": "parquet"}
DID_NAME = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,249}$"
SCOPE = r"^[a-z0-9][a-z0-9_.-]{0,29}$"
TABLE_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------- services


class Interface(BaseModel):
    """One way in to a capability (VOSI)."""

    access_url: str
    role: str | None = None
    version: str | None = None


class Capability(BaseModel):
    """What a service says it does (VOSI capabilities)."""

    standard_id: str | None = Field(examples=["ivo://ivoa.net/std/TAP"])
    interfaces: list[Interface] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list, examples=[["ADQL-2.0", "ADQL-2.1"]])
    upload_methods: list[str] = Field(default_factory=list)
    output_formats: list[str] = Field(default_factory=list)


class VoService(BaseModel):
    """A VO service this deployment offers."""

    name: str = Field(examples=["gavo-tap"])
    type: ServiceType
    url: str
    title: str | None = None
    description: str | None = None
    ivoid: str | None = None
    protected: bool = Field(description="Credentials are sent to it (configured).")


class VoServiceDetail(VoService):
    """A VO service with its capabilities (VOSI, cached)."""

    capabilities: list[Capability] = Field(default_factory=list)
    capabilities_error: str | None = Field(
        default=None, description="Why the capabilities could not be read, if they could not."
    )


class VoServiceList(BaseModel):
    """The configured VO services."""

    items: list[VoService]


class Column(BaseModel):
    """A column of a VO table."""

    name: str
    datatype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    description: str | None = None


class VoTable(BaseModel):
    """A table a TAP service serves (VOSI tables)."""

    name: str = Field(examples=["ivoa.obscore"])
    schema_name: str | None = None
    description: str | None = None
    columns: list[Column] = Field(default_factory=list)


class VoTableList(BaseModel):
    """Tables of one service (filtered by ``q`` when given)."""

    service: str
    items: list[VoTable]


class RegistryResource(BaseModel):
    """A resource found in the IVOA registry (RegTAP)."""

    ivoid: str
    title: str | None = None
    short_name: str | None = None
    description: str | None = None
    waveband: list[str] = Field(default_factory=list)
    service_type: ServiceType | None = Field(
        default=None, description="The protocol of access_url, if it is one we query."
    )
    standard_id: str | None = None
    access_url: str | None = None


class RegistryResults(BaseModel):
    """Registry search results."""

    items: list[RegistryResource]


# ---------------------------------------------------------------------- queries


class Cone(_Strict):
    """A cone: centre (ICRS degrees) and radius (degrees)."""

    ra: float = Field(ge=0.0, lt=360.0, description="Right ascension, degrees [0, 360).")
    dec: float = Field(ge=-90.0, le=90.0, description="Declination, degrees [-90, 90].")
    radius: float = Field(gt=0.0, le=180.0, description="Radius, degrees (0, 180].")


class SiaParameters(Cone):
    """SIA v2 parameters: a cone (POS=CIRCLE) and optional constraints."""

    band: tuple[float, float] | None = Field(
        default=None, description="Wavelength interval in metres (BAND)."
    )
    collection: str | None = Field(default=None, max_length=200)
    calib_level: list[int] | None = Field(default=None, description="CALIB levels 0–4.")

    @model_validator(mode="after")
    def _band(self) -> SiaParameters:
        if self.band is not None and not 0 < self.band[0] <= self.band[1]:
            raise ValueError("band is [low, high] in metres, 0 < low ≤ high")
        if self.calib_level and any(not 0 <= c <= 4 for c in self.calib_level):
            raise ValueError("calib_level values are 0 to 4")
        return self


class Upload(_Strict):
    """A Data Lake table sent to a TAP service as TAP_UPLOAD.<table_name>."""

    did: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,29}:[A-Za-z0-9][A-Za-z0-9._/-]{0,249}$",
        description="scope:name of a VOTable, FITS table or CSV file (with positions).",
        examples=["proj.m31:targets.csv"],
    )
    table_name: str = Field(
        default="upload",
        pattern=TABLE_NAME,
        description="Name in the query: TAP_UPLOAD.<table_name>.",
    )


class Destination(_Strict):
    """Where the result table is written in the Data Lake."""

    scope: str | None = Field(
        default=None, pattern=SCOPE, description="A Data Lake scope (yours or a project's)."
    )
    project: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{1,30}$",
        description="A project's slug: its scope (proj.<slug>).",
    )
    name: str | None = Field(
        default=None,
        pattern=DID_NAME,
        description="DID name of the result (default ivoa/<service>-<query id>.<ext>).",
    )
    format: ResultFormat = Field(default="votable", description="votable, fits or parquet.")
    rse: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _one_scope(self) -> Destination:
        if (self.scope is None) == (self.project is None):
            raise ValueError("give exactly one of scope and project")
        return self


class QueryCreate(_Strict):
    """A query to run at a VO service, its result written into the Data Lake."""

    service: str = Field(description="A configured VO service's name.", examples=["gavo-tap"])
    adql: str | None = Field(
        default=None,
        min_length=1,
        description="TAP: the ADQL query.",
        examples=["SELECT TOP 10 * FROM ivoa.obscore"],
    )
    cone: Cone | None = Field(default=None, description="Cone search (scs) parameters.")
    sia: SiaParameters | None = Field(default=None, description="SIA v2 parameters.")
    upload: Upload | None = Field(default=None, description="TAP: a table to join against.")
    maxrec: int | None = Field(
        default=None, gt=0, description="Most rows wanted (default and cap: the deployment's)."
    )
    mode: QueryMode = Field(
        default="auto",
        description="sync: the request waits for the result; async: answered at once (202) "
        "and run as a job (TAP: a UWS job at the service); auto: sync for small queries.",
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="Give up after this long (at most the deployment's)."
    )
    destination: Destination


class QueryResult(BaseModel):
    """The result table, as written into the Data Lake."""

    did: str = Field(examples=["proj.m31:ivoa/gavo-tap-1b2c3d4e.vot"])
    rows: int
    columns: list[str]
    bytes: int
    format: ResultFormat
    truncated: bool = Field(description="The service stopped at MAXREC (QUERY_STATUS=OVERFLOW).")


class Query(BaseModel):
    """A query job: its phase, timings, result or error."""

    id: str
    owner: str
    service: str
    service_type: ServiceType
    query: str = Field(description="The ADQL, or the cone/SIA parameters as text.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    upload: str | None = Field(default=None, description="DID of the uploaded table.")
    maxrec: int
    mode: Literal["sync", "async"]
    phase: Phase
    destination: str = Field(description="The result's DID (written once completed).")
    format: ResultFormat
    project: str | None = None
    result: QueryResult | None = None
    error: dict[str, Any] | None = Field(
        default=None, description="The problem that ended the query (service message included)."
    )
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    execution_seconds: float | None = Field(
        default=None, description="Seconds from start to end at the service."
    )


class QueryList(BaseModel):
    """The caller's queries, newest first."""

    items: list[Query]
