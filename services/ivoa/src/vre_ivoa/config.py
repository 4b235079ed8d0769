"""Settings of the ivoa service (environment variables VRE_IVOA_…)."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from vre_common.settings import (
    HttpClientSettings,
    ProjectSettings,
    ProvenanceSettings,
    ServiceSettings,
)

ServiceType = Literal["tap", "scs", "sia2"]
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class VoCredentials(BaseModel):
    """Credentials of a protected VO service, sent only to the host of its URL."""

    bearer_token: SecretStr | None = Field(
        default=None, description="Sent as `Authorization: Bearer …`."
    )
    username: str | None = Field(default=None, description="HTTP basic authentication user.")
    password: SecretStr | None = Field(default=None, description="HTTP basic password.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Other headers (an archive's API key header)."
    )


class VoServiceConfig(BaseModel):
    """One VO service the deployment offers."""

    name: str = Field(
        description="Short name used in the API (`service` of a query).",
        examples=["gavo-tap"],
    )
    type: ServiceType = Field(description="tap (TAP 1.1), scs (cone search) or sia2 (SIA v2).")
    url: str = Field(
        description="Base URL: the TAP root (…/tap), the SCS URL, the SIA v2 query URL.",
        examples=["https://dc.g-vo.org/tap"],
    )
    title: str | None = Field(default=None, description="A human title (else from the registry).")
    description: str | None = None
    ivoid: str | None = Field(
        default=None,
        description="The service's IVOA identifier (ivo://…); used in provenance when set.",
    )
    credentials: VoCredentials | None = Field(
        default=None,
        description="For protected services; forwarded only to this URL's scheme, host and "
        "port, never across a redirect to another host.",
    )
    verify: bool | str = Field(default=True, description="TLS verification: bool or a CA bundle.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVICE_NAME.match(value):
            raise ValueError("lower-case letters, digits, '-' and '_' (at most 63)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http(s) URL")
        return value.rstrip("/") if not parts.query else value


class RegistrySettings(BaseModel):
    """The IVOA registry (RegTAP) that VO services are discovered in."""

    url: str | None = Field(
        default=None,
        description="TAP URL of a RegTAP service (e.g. https://reg.g-vo.org/tap); None: "
        "discovery is off.",
    )
    max_results: int = Field(default=50, gt=0, le=500, description="Resources per search.")
    timeout_seconds: float = Field(default=20.0, gt=0)


class LimitSettings(BaseModel):
    """Limits and safety of queries."""

    max_rows: int = Field(
        default=100_000, gt=0, description="Largest MAXREC a query may ask (and the default)."
    )
    max_seconds: float = Field(
        default=600.0, gt=0, description="Longest a query may run at the service."
    )
    sync_max_rows: int = Field(
        default=10_000,
        gt=0,
        description="mode=auto runs a query synchronously when its MAXREC is at most this "
        "(and it has no upload); above it runs as an async (UWS) job.",
    )
    sync_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest a synchronous query may take (then 504)."
    )
    max_query_chars: int = Field(default=20_000, gt=0, description="Longest ADQL accepted.")
    max_result_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="Largest result document read."
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Largest Data Lake table used as an upload."
    )
    max_upload_rows: int = Field(default=100_000, gt=0, description="Rows of an upload table.")
    poll_interval_seconds: float = Field(
        default=0.5, gt=0, description="Longest wait between two looks at an async job."
    )


class CacheSettings(BaseModel):
    """How long VOSI answers (capabilities, tables) are kept."""

    ttl_seconds: float = Field(default=600.0, ge=0)
    max_entries: int = Field(default=256, gt=0)


class DatalakeLinkSettings(BaseModel):
    """Where the datalake service is (results are written there with the caller's token)."""

    url: str | None = Field(default=None, description="Base URL of its API; None: not set.")
    http: HttpClientSettings = Field(default_factory=lambda: HttpClientSettings(read_timeout=600.0))

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None


class JobSettings(BaseModel):
    """Background query jobs."""

    max_concurrent: int = Field(default=4, ge=1, description="Queries running at once.")


class IvoaSettings(ServiceSettings):
    """Configuration of the ivoa service."""

    model_config = SettingsConfigDict(env_prefix="VRE_IVOA_")

    migrations: Literal["upgrade", "verify"] = Field(
        default="upgrade",
        description="At start: 'upgrade' runs the Alembic migrations (embedded mode); 'verify' "
        "refuses to start unless the schema is at the newest revision.",
    )
    services: list[VoServiceConfig] = Field(
        default_factory=list,
        description='The VO services offered, JSON: [{"name": "gavo", "type": "tap", '
        '"url": "https://dc.g-vo.org/tap"}, …].',
    )
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    http: HttpClientSettings = Field(
        default_factory=lambda: HttpClientSettings(connect_timeout=5.0, read_timeout=60.0),
        description="Calls to VO services (a query's own limit is limits.max_seconds).",
    )
    datalake: DatalakeLinkSettings = Field(default_factory=DatalakeLinkSettings)
    default_rse: str | None = Field(
        default=None, description="RSE results are written to (None: the datalake's default)."
    )
    jobs: JobSettings = Field(default_factory=JobSettings)
    gateway_url: str | None = Field(
        default=None,
        description="Distributed mode: the gateway's URL, asked for project access and sent "
        "provenance events. The embedded gateway wires both in-process instead.",
    )
    projects: ProjectSettings = Field(default_factory=ProjectSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)

    @model_validator(mode="after")
    def _unique_names(self) -> IvoaSettings:
        names = [s.name for s in self.services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"VO service names must be unique: {', '.join(duplicates)}")
        return self
