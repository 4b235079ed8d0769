"""Settings of the datalake service (environment variables VRE_DATALAKE_…)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from vre_common.settings import AuthSettings, DatabaseSettings, VreSettings


class DatalakeSettings(VreSettings):
    """Configuration of the datalake service."""

    model_config = SettingsConfigDict(
        env_prefix="VRE_DATALAKE_", extra="forbid", env_nested_delimiter="__"
    )

    auth: AuthSettings = Field(default_factory=AuthSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
