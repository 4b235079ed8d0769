"""Gateway settings (environment variables VRE_…)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict
from vre_common.settings import AuthSettings, DatabaseSettings, VreSettings, data_dir_default

SERVICES = ("datalake", "workflows", "catalogue", "zenodo")


class DevUser(BaseModel):
    """A user of the embedded development issuer."""

    groups: list[str] = Field(default_factory=list)
    email: str | None = None
    name: str | None = None


def _default_dev_users() -> dict[str, DevUser]:
    return {
        "alice": DevUser(groups=["/vre", "/vre/alpha"], email="alice@example.org", name="Alice"),
        "bob": DevUser(groups=["/vre", "/vre/beta"], email="bob@example.org", name="Bob"),
        "carol": DevUser(groups=["/other"], email="carol@example.org", name="Carol"),
    }


class DevIssuerSettings(BaseModel):
    """The embedded development token issuer (never on unless configured)."""

    enabled: bool = False
    path: str = Field(default="/dev-issuer/", description="Where the issuer is served.")
    audience: str = "vre"
    token_lifetime_seconds: int = Field(default=3600, gt=0, le=86_400)
    users: dict[str, DevUser] = Field(default_factory=_default_dev_users)


class RateLimitSettings(BaseModel):
    """Per-caller request rate limit (token bucket)."""

    enabled: bool = True
    requests_per_second: float = Field(default=200.0, gt=0)
    burst: int = Field(default=400, gt=0)


class GatewaySettings(VreSettings):
    """Configuration of the gateway."""

    model_config = SettingsConfigDict(env_prefix="VRE_", extra="forbid", env_nested_delimiter="__")

    mode: Literal["embedded", "distributed"] = "embedded"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = Field(
        default=None, description="The URL users reach the gateway at (default from host/port)."
    )
    data: Path = Field(default_factory=data_dir_default, description="Data folder (VRE_DATA).")
    auth: AuthSettings = Field(default_factory=AuthSettings)
    dev_issuer: DevIssuerSettings = Field(default_factory=DevIssuerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Distributed mode: base URL of each service, e.g. {'datalake': 'http://…'}.",
    )
    proxy_buffer_bytes: int = Field(
        default=1 << 20, description="Bodies up to this size are buffered; larger ones streamed."
    )
    proxy_connect_timeout: float = 3.0
    proxy_read_timeout: float = 60.0
    max_body_bytes: int = Field(
        default=10 << 20, description="Request body limit except on streaming upload routes."
    )
    streaming_routes: list[str] = Field(
        default_factory=lambda: ["PUT /datalake/files/", "POST /workflows/runs"],
        description="'METHOD /prefix' of routes exempt from the body limit.",
    )
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    log_level: str = "INFO"

    @property
    def base_url(self) -> str:
        """The gateway's own URL."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def dev_issuer_url(self) -> str:
        """The development issuer's identifier (with trailing slash, as IAM's)."""
        return self.base_url + self.dev_issuer.path
