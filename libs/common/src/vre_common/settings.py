"""Settings base for every VRE service: pydantic-settings, unknown keys refused."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class VreSettings(BaseSettings):
    """Base class: environment variables with a per-service prefix, no unknown keys."""

    model_config = SettingsConfigDict(
        extra="forbid", env_nested_delimiter="__", validate_default=True
    )


class AuthSettings(BaseModel):
    """How bearer tokens are validated (the same in every service)."""

    issuers: list[str] = Field(
        default_factory=list,
        description="Trusted token issuers, compared exactly (IAM issuers end with '/').",
    )
    audience: str | None = Field(
        default=None, description="Required `aud` value; None accepts tokens without audience."
    )
    algorithms: list[Literal["RS256", "ES256"]] = Field(default=["RS256", "ES256"])
    leeway_seconds: int = Field(default=60, ge=0, le=60)
    jwks_min_refresh_seconds: float = Field(
        default=30.0, ge=0, description="At most one JWKS fetch per issuer per interval."
    )
    jwks_max_age_seconds: float = Field(default=6 * 3600, gt=0)
    http_timeout_seconds: float = Field(default=5.0, gt=0)
    cache_size: int = Field(default=100_000, ge=0, description="Validated tokens kept in memory.")
    admin_groups: list[str] = Field(
        default_factory=lambda: ["/vre/admins"], description="Groups with operator rights."
    )

    @field_validator("issuers")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        return [v for v in value if v]


class DatabaseSettings(BaseModel):
    """A service's own SQL database."""

    url: str = Field(
        default="sqlite+aiosqlite:///:memory:",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    echo: bool = False
    pool_size: int = 10
    pre_ping: bool = Field(
        default=True,
        description="Check a pooled connection before each use (three round trips on "
        "PostgreSQL), so that a database server restarted on its own costs no request. The "
        "embedded mode turns it off: its PostgreSQL starts and stops with the VRE.",
    )


class HttpClientSettings(BaseModel):
    """Timeouts and pooling for calls to a backend."""

    connect_timeout: float = Field(default=3.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=100, gt=0)
    keepalive_expiry: float = Field(
        default=4.0,
        gt=0,
        description="Seconds an idle pooled connection is kept. Below the server's own "
        "keep-alive (uvicorn's 5 s): a connection the server closed at the moment it is "
        "reused fails the call (RemoteProtocolError, seen under load as a 503).",
    )


class ProjectSettings(BaseModel):
    """Science Projects: how their scopes are named and how long access answers are cached."""

    scope_prefix: str = Field(
        default="proj.",
        pattern=r"^[a-z0-9_.-]{1,10}$",
        description="A project's Data Lake scope is prefix + slug (the gateway's "
        "projects.scope_prefix: keep them equal).",
    )
    directory_ttl_seconds: float = Field(
        default=5.0, ge=0, description="How long a project access answer of the gateway is cached."
    )


class ClientCredentialsSettings(BaseModel):
    """An OAuth client registered at IAM with the client credentials grant."""

    token_url: str = Field(
        description="The issuer's token endpoint (IAM: https://<iam>/token).",
        examples=["https://iam.example.org/token"],
    )
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = Field(default=None, description="Scopes to ask for, space-separated.")
    audience: str | None = Field(
        default=None, description="The audience to ask for (the gateway's required `aud`)."
    )
    refresh_margin_seconds: float = Field(
        default=60.0, ge=0, description="Fetch a new token this long before the old expires."
    )
    timeout_seconds: float = Field(default=10.0, gt=0)


class ProvenanceSettings(BaseModel):
    """A service's provenance events, delivered to the gateway through an outbox."""

    enabled: bool = Field(
        default=True,
        description="Record events (only when a sink exists: the gateway in-process, or "
        "gateway_url with a client or a service token).",
    )
    service_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the relay posts events with (a member of the gateway's "
        "provenance.ingest_groups, or an allowed client).",
    )
    service_token_file: Path | None = Field(
        default=None,
        description="File holding that token, read at every delivery (for rotated tokens).",
    )
    client: ClientCredentialsSettings | None = Field(
        default=None,
        description="An IAM client whose own tokens (client credentials grant, renewed before "
        "they expire) the relay posts events with — the deployments' way: list its id in the "
        "gateway's provenance.ingest_clients. Takes precedence over service_token(_file).",
    )
    relay_interval_seconds: float = Field(default=2.0, gt=0)


class ServiceSettings(VreSettings):
    """Base class of a service behind the gateway: token validation and the service's own
    database come first; a subclass sets ``env_prefix`` (``VRE_<SERVICE>_``)."""

    auth: AuthSettings = Field(default_factory=AuthSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)


GatewayUrl = Annotated[
    str | None,
    Field(
        description="Distributed mode: the gateway's URL, asked for project access "
        "(GET /projects/-/access) and sent provenance events. The embedded gateway wires "
        "both in-process instead.",
        examples=["https://vre.example.org"],
    ),
]
"""A service's ``gateway_url`` setting (default None: the embedded gateway)."""


def data_dir_default() -> Path:
    """The embedded mode's data folder (``VRE_DATA`` or ``./.vre``)."""
    import os

    return Path(os.environ.get("VRE_DATA", ".vre")).resolve()


__all__ = [
    "AuthSettings",
    "ClientCredentialsSettings",
    "DatabaseSettings",
    "GatewayUrl",
    "HttpClientSettings",
    "ProjectSettings",
    "ProvenanceSettings",
    "SecretStr",
    "ServiceSettings",
    "VreSettings",
    "data_dir_default",
]
