"""Settings of the datalake service (environment variables VRE_DATALAKE_…)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from vre_common.settings import (
    ClientCredentialsSettings,
    DatabaseSettings,
    GatewayUrl,
    ProjectSettings,
    ServiceSettings,
)
from vre_common.settings import ProvenanceSettings as CommonProvenanceSettings

IdentityMode = Literal["service", "token"]


def ssl_verify(value: bool | str) -> bool | ssl.SSLContext:
    """httpx's ``verify`` for a setting that is a bool or a CA bundle path."""
    if isinstance(value, str):
        return ssl.create_default_context(cafile=value)
    return value


MetadataPlugin = Literal["ALL", "DID_COLUMN"]


class RucioSettings(BaseModel):
    """Where Rucio is and how the service talks to it."""

    url: str = Field(
        default="http://127.0.0.1:8081",
        description="Base URL of Rucio's REST API (no trailing slash).",
        examples=["https://rucio.escape.example.org"],
    )
    auth_url: str | None = Field(
        default=None, description="Rucio's auth server; defaults to `url`."
    )
    identity_mode: IdentityMode = Field(
        default="service",
        description=(
            "`service`: the service logs in with its own userpass credential and acts for the "
            "user on an account derived from (iss, sub), created on first use. `token`: the "
            "user's bearer token is forwarded as X-Rucio-Auth-Token (Rucio must trust the "
            "issuer and map the identity `SUB=…, ISS=…`)."
        ),
    )
    service_account: str = Field(
        default="root", description="Rucio account the service logs in as for provisioning."
    )
    service_username: str = Field(
        default="vre-admin", description="The service's userpass identity in Rucio."
    )
    service_password: SecretStr = Field(
        default=SecretStr(""), description="Password of the service's userpass identity."
    )
    verify: bool | str = Field(
        default=True, description="TLS verification for Rucio: bool or a CA bundle path."
    )
    connect_timeout: float = Field(default=3.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_connections: int = Field(
        default=16,
        gt=0,
        description=(
            "At most this many requests to Rucio at once; more wait for a connection (up to "
            "`pool_timeout`). Keep it near the Rucio server's workers × threads: requests "
            "queued inside an overloaded Rucio would each run into `read_timeout` instead."
        ),
    )
    pool_timeout: float = Field(
        default=60.0, gt=0, description="How long a request may wait for a free connection."
    )
    keepalive_expiry_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Idle pooled connections to Rucio are dropped after this long. Keep it below "
            "the Rucio server's keep-alive (gunicorn's default is 2 s): a connection the "
            "server already closed would otherwise be reused and the call fail."
        ),
    )
    token_refresh_margin_seconds: int = Field(
        default=120, ge=0, description="Renew a cached Rucio token this long before it expires."
    )
    metadata_plugin: MetadataPlugin = Field(
        default="ALL",
        description=(
            "Rucio metadata plugin used to read and check DID metadata. `ALL` includes "
            "arbitrary keys (Rucio's JSON plugin, on PostgreSQL); `DID_COLUMN`, for a Rucio "
            "without it, only the DID columns (other keys are refused before an upload)."
        ),
    )
    retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After sent when Rucio is unreachable."
    )
    rse_cache_seconds: float = Field(
        default=600.0,
        ge=0,
        description=(
            "How long the PFN layout learnt from Rucio's first lfns2pfns answer for an RSE is "
            "reused to compute new files' PFNs locally (Rucio still checks each PFN it is sent)."
        ),
    )
    usage_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description=(
            "How long an account's usage read from Rucio is reused by the uploads' early quota "
            "check (uploads registered meanwhile are added to it). Rucio's own check when the "
            "upload's rule is added is the one that holds."
        ),
    )

    @property
    def auth_base(self) -> str:
        """The auth server's base URL."""
        return (self.auth_url or self.url).rstrip("/")


class AccountSettings(BaseModel):
    """How Rucio accounts are derived from IAM identities (service mode)."""

    scope_prefix: str = Field(default="user.", description="A user's scope is prefix + account.")
    default_limit_bytes: int | None = Field(
        default=10 * 1024**3,
        ge=0,
        description="Local account limit set on every RSE for new accounts (None: no limit set).",
    )
    limit_rse_expression: str = Field(
        default="*", description="RSEs on which new accounts get the default limit."
    )
    email_domain: str = Field(
        default="vre.invalid", description="Used when the token carries no e-mail address."
    )


class StorageSettings(BaseModel):
    """How bytes are moved to and from storage elements."""

    default_rse: str | None = Field(
        default=None, description="RSE used when an upload names none (first writable if None)."
    )
    chunk_size: int = Field(
        default=1 << 20, ge=4096, le=64 << 20, description="Bytes per storage read/write."
    )
    temp_suffix: str = Field(
        default=".vre-part",
        description=(
            "Uploads are written next to their final path under `<name><suffix>-<random>` "
            "and renamed (POSIX) or MOVEd (WebDAV) into place once checksummed."
        ),
    )
    fsync: bool = Field(
        default=True, description="fsync POSIX files and folders before registering a replica."
    )
    webdav_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token for WebDAV storage in service mode (token mode forwards the user's). "
            "A static token expires and is not rotated: prefer webdav_client."
        ),
    )
    webdav_client: ClientCredentialsSettings | None = Field(
        default=None,
        description="An IAM client with storage scopes (e.g. 'storage.read:/ storage.modify:/') "
        "and the storage's audience: the datalake fetches its own token for WebDAV storage in "
        "service mode and renews it before it expires (instead of webdav_token).",
    )
    webdav_verify: bool | str = Field(
        default=True, description="TLS verification for WebDAV storage: bool or CA bundle path."
    )
    webdav_timeout: float = Field(default=60.0, gt=0)
    read_preference: list[str] = Field(
        default_factory=list, description="RSEs to read from first, in order."
    )


class ListingSettings(BaseModel):
    """Page sizes of JSON listings (NDJSON listings stream everything)."""

    default_page_size: int = Field(default=1000, gt=0)
    max_page_size: int = Field(default=10_000, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ListingSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self


class ProjectScopeSettings(ProjectSettings):
    """Science Projects' scopes: naming, who answers for membership, who may create them."""

    account_prefix: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]{1,10}$",
        description="A project scope <scope_prefix><slug> is owned by the Rucio account "
        "<account_prefix><slug> (type GROUP); user accounts never get names with this prefix. "
        "Default: scope_prefix with '.' replaced by '-' (proj. → proj-).",
    )
    provisioner_groups: list[str] = Field(
        default_factory=lambda: ["/vre/services"],
        description="IAM groups whose members may create project scopes (POST /scopes); "
        "members of auth.admin_groups always may.",
    )
    provisioner_clients: list[str] = Field(
        default_factory=list,
        description="OAuth client ids (token `client_id`) that may create project scopes.",
    )

    @model_validator(mode="after")
    def _account_prefix(self) -> ProjectScopeSettings:
        if self.account_prefix is None:
            self.account_prefix = self.scope_prefix.replace(".", "-")
        if len(self.account_prefix) > len(self.scope_prefix):
            raise ValueError("account_prefix must not be longer than scope_prefix")
        return self

    @property
    def accounts(self) -> str:
        """The account prefix in effect."""
        assert self.account_prefix is not None  # set by the validator
        return self.account_prefix


class ProvenanceSettings(CommonProvenanceSettings):
    """Provenance events of uploads and attachments, delivered through an outbox."""

    outbox: Literal["file", "database"] = Field(
        default="file",
        description="Where events wait for delivery: a SQLite file (`outbox_path`; the "
        "embedded mode), or the outbox table of the datalake's own `database` (deployments: "
        "it outlives a pod that is scaled down; migrations: vre-migrate datalake).",
    )
    outbox_path: Path | None = Field(
        default=None,
        description="The outbox's SQLite file. None: a file in a temporary folder made at "
        "start (events left pending by a crash are then not recovered after a restart).",
    )
    pending_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="An event still pending after this long was left by a crash: Rucio is "
        "asked whether its action happened.",
    )


class DatalakeSettings(ServiceSettings):
    """Configuration of the datalake service."""

    model_config = SettingsConfigDict(env_prefix="VRE_DATALAKE_")

    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings,
        description="The datalake's own database: only its provenance outbox, with "
        "provenance.outbox=database.",
    )
    migrations: Literal["auto", "upgrade", "verify"] = Field(
        default="auto",
        description="At start, with provenance.outbox=database: upgrade the outbox's schema, "
        "or refuse to start when it is not at the newest migration; auto = verify in the "
        "distributed mode (gateway_url set), upgrade otherwise.",
    )
    rucio: RucioSettings = Field(default_factory=RucioSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    listing: ListingSettings = Field(default_factory=ListingSettings)
    gateway_url: GatewayUrl = None
    projects: ProjectScopeSettings = Field(default_factory=ProjectScopeSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)
