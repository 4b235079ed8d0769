"""Settings of the catalogue service (environment variables VRE_CATALOGUE_…)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from vre_common.settings import AuthSettings, DatabaseSettings, VreSettings


class CatalogueSettings(VreSettings):
    """Configuration of the catalogue service."""

    model_config = SettingsConfigDict(
        env_prefix="VRE_CATALOGUE_", extra="forbid", env_nested_delimiter="__"
    )

    auth: AuthSettings = Field(default_factory=AuthSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
