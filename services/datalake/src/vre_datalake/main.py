"""The datalake service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.readiness import install_readiness
from vre_datalake.config import DatalakeSettings


def create_app(
    settings: DatalakeSettings | None = None, *, validator: TokenValidator | None = None
) -> FastAPI:
    """Build the datalake app; the gateway passes its own validator when it mounts the app."""
    settings = settings or DatalakeSettings()
    app = create_base_app(
        service="datalake",
        title="VRE datalake",
        description="VRE datalake service.",
    )
    app.state.settings = settings
    app.state.validator = validator or build_validator(settings.auth)
    install_readiness(app, {})
    return app
