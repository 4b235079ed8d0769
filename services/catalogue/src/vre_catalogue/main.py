"""The catalogue service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.readiness import install_readiness
from vre_catalogue.config import CatalogueSettings


def create_app(
    settings: CatalogueSettings | None = None, *, validator: TokenValidator | None = None
) -> FastAPI:
    """Build the catalogue app; the gateway passes its own validator when it mounts the app."""
    settings = settings or CatalogueSettings()
    app = create_base_app(
        service="catalogue",
        title="VRE catalogue",
        description="VRE catalogue service.",
    )
    app.state.settings = settings
    app.state.validator = validator or build_validator(settings.auth)
    install_readiness(app, {})
    return app
