"""Settings of the catalogue service (environment variables VRE_CATALOGUE_…)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from vre_common.settings import HttpClientSettings, ServiceSettings

ESCAPE_GRANT = "10.13039/501100000780::824064"
OSSR_COMMUNITY = "escape2020"

# Zenodo's documented limits on GET /api/records.
ZENODO_ANONYMOUS_PAGE_SIZE = 25
ZENODO_AUTHENTICATED_PAGE_SIZE = 100
ZENODO_RESULT_WINDOW = 10_000


class ZenodoSourceSettings(BaseModel):
    """Where the OSSR harvest reads records from (Zenodo or any InvenioRDM with its API)."""

    url: str = Field(
        default="https://zenodo.org", description="Base URL; /api/records is appended."
    )
    token: SecretStr | None = Field(
        default=None, description="Personal token: allows pages of 100 instead of 25."
    )
    community: str = Field(default=OSSR_COMMUNITY, description="Community harvested by default.")
    record_type: str | None = Field(
        default="software", description="Zenodo resource type filter (None: every type)."
    )
    page_size: int = Field(
        default=ZENODO_AUTHENTICATED_PAGE_SIZE,
        gt=0,
        le=ZENODO_AUTHENTICATED_PAGE_SIZE,
        description="Wanted page size; capped at 25 without a token.",
    )
    result_window: int = Field(
        default=ZENODO_RESULT_WINDOW,
        gt=0,
        description="Deepest hit a query can page to; larger result sets are sliced by date.",
    )
    sort: str = Field(default="mostrecent", description="Sort order asked of Zenodo.")
    settle_seconds: float = Field(
        default=300.0,
        ge=0,
        description="A harvest leaves out records changed in the last N seconds (Zenodo's "
        "search index lags behind its writes); the next harvest takes them.",
    )
    max_codemeta_bytes: int = Field(
        default=1 << 20, gt=0, description="A record's codemeta.json larger than this is ignored."
    )
    http: HttpClientSettings = Field(default_factory=HttpClientSettings)

    @property
    def effective_page_size(self) -> int:
        """The page size Zenodo allows for this configuration."""
        cap = ZENODO_AUTHENTICATED_PAGE_SIZE if self.token else ZENODO_ANONYMOUS_PAGE_SIZE
        return min(self.page_size, cap)


class ExportSettings(BaseModel):
    """What the Zenodo export adds to every entry (the OSSR crosswalk)."""

    grants: list[str] = Field(
        default_factory=lambda: [ESCAPE_GRANT], description="Grant ids added to the metadata."
    )
    communities: list[str] = Field(
        default_factory=lambda: [OSSR_COMMUNITY], description="Communities asked for."
    )


class CatalogueSettings(ServiceSettings):
    """Configuration of the catalogue service."""

    model_config = SettingsConfigDict(env_prefix="VRE_CATALOGUE_")

    migrations: Literal["upgrade", "verify"] = Field(
        default="upgrade",
        description=(
            "At start: 'upgrade' runs the Alembic migrations (embedded mode); 'verify' refuses "
            "to start unless the schema is at the newest revision (migrations run as their own "
            "step in production)."
        ),
    )
    curator_groups: list[str] = Field(
        default_factory=lambda: ["/vre/curators"],
        description="Groups whose members may edit every entry and start harvests "
        "(members of auth.admin_groups may too).",
    )
    zenodo: ZenodoSourceSettings = Field(default_factory=ZenodoSourceSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    gateway_url: str | None = Field(
        default=None,
        description="Distributed mode: the gateway asked about Science Projects (GET "
        "/projects/-/access) for project-owned entries; the embedded gateway answers in-process.",
    )
    directory_ttl_seconds: float = Field(
        default=5.0, ge=0, description="How long a project access answer is cached."
    )
    facet_limit: int = Field(default=20, gt=0, description="Values returned per facet.")
