"""Settings of the zenodo service (environment variables VRE_ZENODO_…)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from vre_common.settings import AuthSettings, DatabaseSettings, VreSettings


class ZenodoSettings(VreSettings):
    """Configuration of the zenodo service."""

    model_config = SettingsConfigDict(
        env_prefix="VRE_ZENODO_", extra="forbid", env_nested_delimiter="__"
    )

    auth: AuthSettings = Field(default_factory=AuthSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
