"""The catalogue's API models (pydantic), shared by handlers, services and storage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vre_common.problems import FieldError

Role = Literal["author", "maintainer", "contributor"]
EntrySource = Literal["api", "harvest"]
EnvironmentKind = Literal["container", "conda", "pip", "apptainer", "other"]
HarvestStatus = Literal["queued", "running", "succeeded", "failed"]
FacetName = Literal["keyword", "license", "language", "platform", "community"]


def json_pointer(loc: list[str | int] | tuple[str | int, ...]) -> str:
    """The RFC 6901 JSON pointer of a ``loc`` path ('' for the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


class CodemetaIssue(FieldError):  # noqa: N818 - a model, not an exception (FieldError is)
    """One problem (or warning) of a codemeta.json: where, what, and what to write instead."""

    pointer: str = Field(
        default="",
        description="Where, as an RFC 6901 JSON pointer into the document ('' = the whole).",
    )
    fix: str | None = Field(default=None, description="What to write instead.")
    line: int | None = Field(default=None, description="JSON syntax errors: the line (1-based).")
    column: int | None = Field(default=None, description="JSON syntax errors: the column.")

    @model_validator(mode="before")
    @classmethod
    def _pointer_from_loc(cls, data: Any) -> Any:
        # Rows stored before pointers existed carry only ``loc``.
        if isinstance(data, dict) and "pointer" not in data and isinstance(data.get("loc"), list):
            return {**data, "pointer": json_pointer(data["loc"])}
        return data


CODEMETA_EXAMPLE: dict[str, Any] = {
    "@context": "https://w3id.org/codemeta/3.0",
    "@type": "SoftwareSourceCode",
    "name": "gammapy",
    "description": "A Python package for gamma-ray astronomy.",
    "softwareVersion": "1.2",
    "datePublished": "2024-02-29",
    "license": "https://spdx.org/licenses/BSD-3-Clause",
    "codeRepository": "https://github.com/gammapy/gammapy",
    "readme": "https://docs.gammapy.org/",
    "keywords": ["gamma-ray astronomy", "astropy"],
    "programmingLanguage": ["Python"],
    "runtimePlatform": ["Python 3.9", "Python 3.11"],
    "author": [
        {
            "@type": "Person",
            "@id": "https://orcid.org/0000-0002-1825-0097",
            "givenName": "Josiah",
            "familyName": "Carberry",
        }
    ],
    "maintainer": [{"@type": "Person", "givenName": "Axel", "familyName": "Donath"}],
}


SOFTWARE_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "name": "gammapy",
    "description": "A Python package for gamma-ray astronomy.",
    "registrant": "alice",
    "community": "escape2020",
    "source": "api",
    "latest_version": "1.2",
    "versions": ["1.2", "1.1"],
    "licenses": ["BSD-3-Clause"],
    "keywords": ["gamma-ray astronomy", "astropy"],
    "programming_languages": ["Python"],
    "runtime_platforms": ["Python 3.11"],
    "authors": [{"type": "Person", "name": "Josiah Carberry"}],
    "maintainers": [],
    "code_repository": "https://github.com/gammapy/gammapy",
    "readme": "https://docs.gammapy.org/",
    "dois": ["10.5281/zenodo.10726484"],
    "zenodo_concept_id": None,
    "created_at": "2024-03-01T10:00:00Z",
    "updated_at": "2024-03-01T10:00:00Z",
}


class Person(BaseModel):
    """A person (or organisation) credited on a release."""

    type: Literal["Person", "Organization"] = "Person"
    name: str = Field(description="Display name ('Given Family', or the organisation's name).")
    given_name: str | None = None
    family_name: str | None = None
    orcid: str | None = Field(default=None, description="Bare ORCID iD, e.g. 0000-0002-1825-0097.")
    email: str | None = None
    affiliation: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "Person",
                    "name": "Josiah Carberry",
                    "given_name": "Josiah",
                    "family_name": "Carberry",
                    "orcid": "0000-0002-1825-0097",
                    "affiliation": "Brown University",
                }
            ]
        }
    )


class EnvironmentCreate(BaseModel):
    """A container image or environment in which a release runs (usable by workflows)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "container",
                    "image": "ghcr.io/gammapy/gammapy:v1.2",
                    "digest": "sha256:" + "0" * 64,
                    "description": "Official image with the tutorials' dependencies.",
                }
            ]
        },
    )

    kind: EnvironmentKind = "container"
    image: str = Field(
        min_length=1,
        max_length=500,
        description="Image reference (registry/name:tag), conda environment file URL, or "
        "pip requirement set.",
    )
    digest: str | None = Field(
        default=None, pattern=r"^sha(256|512):[0-9a-f]{64,128}$", description="Content digest."
    )
    description: str | None = Field(default=None, max_length=2000)


class Environment(EnvironmentCreate):
    """An environment attached to one release of an entry."""

    model_config = ConfigDict(extra="ignore")

    id: int
    software_id: int
    version: str
    created_at: datetime


class SoftwareVersion(BaseModel):
    """One release of a software entry, as described by its codemeta.json."""

    version: str
    date_published: date | None = None
    description: str
    licenses: list[str] = Field(default_factory=list, description="SPDX license ids.")
    authors: list[Person] = Field(default_factory=list)
    maintainers: list[Person] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    programming_languages: list[str] = Field(default_factory=list)
    runtime_platforms: list[str] = Field(default_factory=list)
    code_repository: str | None = None
    readme: str | None = None
    dois: list[str] = Field(default_factory=list)
    codemeta_version: Literal["2.0", "3.0"]
    source: EntrySource
    zenodo_record_id: str | None = None
    environments: list[Environment] = Field(default_factory=list)
    warnings: list[CodemetaIssue] = Field(
        default_factory=list, description="What the codemeta.json lacks or does oddly."
    )
    created_at: datetime
    updated_at: datetime


class Software(BaseModel):
    """A catalogue entry: one piece of software, many releases. Top-level fields describe the
    latest release (by publication date)."""

    model_config = ConfigDict(json_schema_extra={"examples": [SOFTWARE_EXAMPLE]})

    id: int
    name: str
    description: str
    registrant: str = Field(description="Who registered the entry (user name, or the harvest).")
    project: str | None = Field(
        default=None,
        description="The Science Project that owns the entry (its slug): its maintainers edit "
        "it. None: the registrant's own entry.",
    )
    community: str | None = Field(default=None, description="Zenodo community, e.g. escape2020.")
    source: EntrySource
    latest_version: str
    versions: list[str] = Field(description="Every release, newest first.")
    licenses: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    programming_languages: list[str] = Field(default_factory=list)
    runtime_platforms: list[str] = Field(default_factory=list)
    authors: list[Person] = Field(default_factory=list)
    maintainers: list[Person] = Field(default_factory=list)
    code_repository: str | None = None
    readme: str | None = None
    dois: list[str] = Field(default_factory=list, description="DOIs of every release.")
    zenodo_concept_id: str | None = None
    created_at: datetime
    updated_at: datetime


class SoftwareRef(BaseModel):
    """What the rules need to know about an entry (not part of the API)."""

    id: int
    name: str
    registrant_key: str
    project: str | None = None
    source: EntrySource
    community: str | None
    zenodo_concept_id: str | None


class VersionRef(BaseModel):
    """What the rules need to know about a release (not part of the API)."""

    id: int
    software_id: int
    version: str
    zenodo_record_id: str | None
    source_updated: datetime | None


class Registration(BaseModel):
    """The answer to a registration: the entry, the release, and the warnings."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "created": True,
                    "software": SOFTWARE_EXAMPLE,
                    "version": "1.2",
                    "warnings": [
                        {
                            "loc": ["funding"],
                            "pointer": "/funding",
                            "msg": "the OSSR recommends 'funding'",
                            "type": "recommended",
                            "fix": 'add "funding"',
                        },
                        {
                            "loc": ["softwareVersion"],
                            "pointer": "/softwareVersion",
                            "msg": "'1.2' is not a semantic version (semver.org), which the "
                            "OSSR recommends",
                            "type": "version_format",
                            "fix": 'write MAJOR.MINOR.PATCH, e.g. "1.2.0"',
                        },
                    ],
                }
            ]
        }
    )

    created: bool = Field(description="True if a new entry was made, False for a new release.")
    software: Software
    version: str
    warnings: list[CodemetaIssue] = Field(default_factory=list)


class SoftwareHit(BaseModel):
    """One search result."""

    id: int
    name: str
    description: str
    latest_version: str
    licenses: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    programming_languages: list[str] = Field(default_factory=list)
    runtime_platforms: list[str] = Field(default_factory=list)
    community: str | None = None
    project: str | None = Field(default=None, description="The owning project's slug.")
    score: float | None = Field(default=None, description="Relevance (higher is better).")


class FacetCount(BaseModel):
    """How many results carry one facet value."""

    value: str
    count: int


class Facets(BaseModel):
    """Facet counts over the whole filtered result (not only the page)."""

    keyword: list[FacetCount] = Field(default_factory=list)
    license: list[FacetCount] = Field(default_factory=list)
    language: list[FacetCount] = Field(default_factory=list)
    platform: list[FacetCount] = Field(default_factory=list)
    community: list[FacetCount] = Field(default_factory=list)


class SearchQuery(BaseModel):
    """A search: full text plus facet filters (every given value must match)."""

    q: str | None = None
    filters: dict[FacetName, list[str]] = Field(default_factory=dict)
    page: int = 1
    size: int = 20


class SearchResult(BaseModel):
    """A page of search results with the total and the facet counts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total": 1,
                    "page": 1,
                    "size": 20,
                    "items": [
                        {
                            "id": 7,
                            "name": "gammapy",
                            "description": "A Python package for gamma-ray astronomy.",
                            "latest_version": "1.2",
                            "licenses": ["BSD-3-Clause"],
                            "keywords": ["gamma-ray astronomy"],
                            "programming_languages": ["Python"],
                            "runtime_platforms": [],
                            "community": "escape2020",
                            "score": 3.2,
                        }
                    ],
                    "facets": {
                        "keyword": [{"value": "gamma-ray astronomy", "count": 1}],
                        "license": [{"value": "BSD-3-Clause", "count": 1}],
                        "language": [{"value": "Python", "count": 1}],
                        "platform": [],
                        "community": [{"value": "escape2020", "count": 1}],
                    },
                }
            ]
        }
    )

    total: int
    page: int
    size: int
    items: list[SoftwareHit]
    facets: Facets


class HarvestCreate(BaseModel):
    """Start a harvest of a Zenodo community."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"community": "escape2020"}]}
    )

    community: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]{1,100}$",
        description="Zenodo community id (default: the configured one, escape2020).",
    )
    full: bool = Field(
        default=False,
        description="Re-read every record instead of only those changed since the last "
        "successful harvest (still adds nothing that is already there).",
    )


class HarvestIssue(BaseModel):
    """A record the harvest could not take, or took with a remark."""

    record_id: str
    msg: str


class HarvestJob(BaseModel):
    """A harvest job, with its progress and counts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "community": "escape2020",
                    "status": "succeeded",
                    "full": False,
                    "since": "2024-03-01T00:00:00Z",
                    "until": "2024-04-01T00:00:00Z",
                    "requested_by": "admin",
                    "created_at": "2024-04-01T00:00:00Z",
                    "started_at": "2024-04-01T00:00:00Z",
                    "finished_at": "2024-04-01T00:00:09Z",
                    "total": 12,
                    "processed": 12,
                    "progress": 1.0,
                    "pages": 1,
                    "created": 2,
                    "versions_added": 3,
                    "updated": 1,
                    "unchanged": 5,
                    "failed": 1,
                    "issues": [{"record_id": "1234", "msg": "the record has no title"}],
                    "detail": None,
                }
            ]
        }
    )

    id: int
    community: str
    status: HarvestStatus
    full: bool
    since: datetime | None = Field(description="Lower bound on Zenodo's `updated` (inclusive).")
    until: datetime = Field(description="Upper bound on Zenodo's `updated` (exclusive).")
    requested_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    total: int = Field(description="Records in the window, as Zenodo counted them.")
    processed: int
    progress: float = Field(ge=0, le=1)
    pages: int
    created: int = Field(description="New entries.")
    versions_added: int = Field(description="New releases of entries that existed.")
    updated: int = Field(description="Releases whose record changed on Zenodo.")
    unchanged: int
    failed: int
    issues: list[HarvestIssue] = Field(default_factory=list)
    detail: str | None = None


class HarvestJobList(BaseModel):
    """Recent harvest jobs, newest first."""

    items: list[HarvestJob]


class ZenodoCreator(BaseModel):
    """A Zenodo creator or contributor."""

    name: str = Field(description="'Family, Given'.")
    affiliation: str | None = None
    orcid: str | None = None
    type: str | None = Field(default=None, description="Contributors only: e.g. ContactPerson.")


class ZenodoRelatedIdentifier(BaseModel):
    """A Zenodo related identifier."""

    identifier: str
    relation: str
    resource_type: str | None = None


class ZenodoMetadata(BaseModel):
    """Zenodo deposit metadata for a release (the OSSR codemeta → Zenodo crosswalk)."""

    upload_type: Literal["software"] = "software"
    title: str
    description: str
    version: str
    publication_date: date | None = None
    creators: list[ZenodoCreator]
    contributors: list[ZenodoCreator] = Field(default_factory=list)
    license: str | None = None
    keywords: list[str] = Field(default_factory=list)
    related_identifiers: list[ZenodoRelatedIdentifier] = Field(default_factory=list)
    grants: list[dict[str, str]] = Field(default_factory=list)
    communities: list[dict[str, str]] = Field(default_factory=list)
    access_right: Literal["open"] = "open"


class ZenodoExport(BaseModel):
    """The metadata block to PUT on a Zenodo deposition."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "metadata": {
                        "upload_type": "software",
                        "title": "gammapy",
                        "description": "A Python package for gamma-ray astronomy.",
                        "version": "1.2",
                        "publication_date": "2024-02-29",
                        "creators": [{"name": "Carberry, Josiah", "orcid": "0000-0002-1825-0097"}],
                        "contributors": [{"name": "Donath, Axel", "type": "ContactPerson"}],
                        "license": "bsd-3-clause",
                        "keywords": ["gamma-ray astronomy"],
                        "related_identifiers": [
                            {
                                "identifier": "https://docs.gammapy.org/",
                                "relation": "isDocumentedBy",
                                "resource_type": "publication-softwaredocumentation",
                            },
                            {
                                "identifier": "https://github.com/gammapy/gammapy",
                                "relation": "isDerivedFrom",
                                "resource_type": "software",
                            },
                        ],
                        "grants": [{"id": "10.13039/501100000780::824064"}],
                        "communities": [{"identifier": "escape2020"}],
                        "access_right": "open",
                    }
                }
            ]
        }
    )

    metadata: ZenodoMetadata


class VersionList(BaseModel):
    """Every release of an entry, newest first."""

    items: list[SoftwareVersion]


class EnvironmentList(BaseModel):
    """Environments of an entry's releases."""

    items: list[Environment]
