"""Settings of the zenodo service (environment variables VRE_ZENODO_…)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from vre_common.settings import (
    GatewayUrl,
    HttpClientSettings,
    ProjectSettings,
    ProvenanceSettings,
    ServiceSettings,
    data_dir_default,
)

# Zenodo's documented limits.
ANONYMOUS_PAGE_SIZE = 25
AUTHENTICATED_PAGE_SIZE = 100
RESULT_WINDOW = 10_000
MAX_FILES_PER_DEPOSITION = 100


class ZenodoApiSettings(BaseModel):
    """Which Zenodo (or InvenioRDM with Zenodo's API) and how to talk to it."""

    url: str = Field(
        default="https://zenodo.org",
        description="Base URL without /api: zenodo.org, sandbox.zenodo.org or any InvenioRDM "
        "that serves the deposit and records API.",
        examples=["https://sandbox.zenodo.org"],
    )
    verify: bool | str = Field(default=True, description="TLS verification: bool or a CA bundle.")
    http: HttpClientSettings = Field(
        default_factory=lambda: HttpClientSettings(read_timeout=60.0),
        description="Timeouts and pool of JSON calls.",
    )
    transfer_read_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Read timeout of file transfers (Zenodo may take minutes to answer after "
        "a large upload's last byte).",
    )
    chunk_size: int = Field(default=1 << 20, ge=4096, description="Bytes per streamed chunk.")
    anonymous_page_size: int = Field(
        default=ANONYMOUS_PAGE_SIZE, gt=0, description="Largest search page without a token."
    )
    authenticated_page_size: int = Field(
        default=AUTHENTICATED_PAGE_SIZE, gt=0, description="Largest search page with a token."
    )
    result_window: int = Field(
        default=RESULT_WINDOW, gt=0, description="Deepest search hit Zenodo pages to."
    )
    max_files: int = Field(
        default=MAX_FILES_PER_DEPOSITION, gt=0, description="Files Zenodo accepts per deposition."
    )
    doi_pattern: str = Field(
        default=r"^10\.\d{4,9}/zenodo\.(\d+)$",
        description="DOIs matching this regular expression name the record id in group 1 "
        "(10.5281 on zenodo.org, 10.5072 on the sandbox); other DOIs are searched.",
    )

    @field_validator("url")
    @classmethod
    def _strip_url(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def api(self) -> str:
        """The API root."""
        return self.url + "/api"


class ServiceLinkSettings(BaseModel):
    """Where another VRE service is (called with the caller's token)."""

    url: str | None = Field(
        default=None, description="Base URL of the service's API; None: not configured."
    )
    http: HttpClientSettings = Field(default_factory=HttpClientSettings)

    @field_validator("url")
    @classmethod
    def _strip_url(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None


class ImportSettings(BaseModel):
    """How Zenodo records are imported into the Data Lake."""

    dataset_template: str = Field(
        default="zenodo-{record_id}",
        description="Name of the dataset a record's files are attached to.",
    )
    file_template: str = Field(
        default="zenodo-{record_id}/{key}",
        description="DID name of each imported file.",
    )
    metadata_keys: dict[str, str] = Field(
        default_factory=lambda: {
            "doi": "doi",
            "title": "title",
            "version": "version",
            "license": "license",
        },
        description="Record field → Data Lake metadata key set on the dataset (fields: doi, "
        "title, version, license, record_id, publication_date, resource_type).",
    )
    max_files: int = Field(default=1000, gt=0, description="Largest record accepted for import.")


class PublishSettings(BaseModel):
    """How Data Lake files are published."""

    doi_metadata_key: str = Field(
        default="doi", description="Data Lake metadata key the DOI is written to on publish."
    )


class JobSettings(BaseModel):
    """Background jobs (imports, deposition uploads)."""

    max_concurrent: int = Field(default=4, ge=1, description="Jobs running at once.")
    progress_interval_seconds: float = Field(
        default=1.0, ge=0, description="How often a running transfer saves its byte count."
    )


class ZenodoSettings(ServiceSettings):
    """Configuration of the zenodo service."""

    model_config = SettingsConfigDict(env_prefix="VRE_ZENODO_")

    data_dir: Path = Field(
        default_factory=lambda: data_dir_default() / "zenodo",
        description="Where the generated credentials key is kept (embedded mode).",
    )
    migrations: Literal["upgrade", "verify"] = Field(
        default="upgrade",
        description="At start: 'upgrade' runs the Alembic migrations (embedded mode); 'verify' "
        "refuses to start unless the schema is at the newest revision.",
    )
    credentials_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64 of 32 bytes) encrypting users' Zenodo tokens. "
        "Unset: a key is generated once into data_dir/credentials.key (embedded mode).",
    )
    previous_credentials_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Older keys still accepted for decryption (key rotation).",
    )
    verify_tokens: bool = Field(
        default=True, description="Check a token with Zenodo when it is registered."
    )
    zenodo: ZenodoApiSettings = Field(default_factory=ZenodoApiSettings)
    datalake: ServiceLinkSettings = Field(
        default_factory=lambda: ServiceLinkSettings(http=HttpClientSettings(read_timeout=600.0)),
        description="The datalake service (imports write there, publications read there).",
    )
    workflows: ServiceLinkSettings = Field(
        default_factory=ServiceLinkSettings,
        description="The workflows service (GET /runs/{id} gives a run's output DIDs).",
    )
    catalogue: ServiceLinkSettings = Field(
        default_factory=ServiceLinkSettings,
        description="The catalogue service (GET /software/{id}/zenodo gives a metadata block).",
    )
    imports: ImportSettings = Field(default_factory=ImportSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    gateway_url: GatewayUrl = None
    projects: ProjectSettings = Field(default_factory=ProjectSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)
