"""The datalake service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_common.auth import TokenValidator
from vre_common.link import GatewayLink, create_service_app, serve_readiness
from vre_datalake.backends.base import DatalakeBackend
from vre_datalake.config import DatalakeSettings
from vre_datalake.factory import Factory
from vre_datalake.handlers import catalogue, dids, files, rules

DESCRIPTION = """\
The Data Lake on Rucio: scopes, DIDs (files, datasets, containers) and their metadata,
streaming upload and download, replicas, replication rules, usage against quotas, and a
DID resolver for the other services.

Each caller acts as a Rucio account derived from their IAM identity and owns the scope
`user.<account>`. A Science Project's scope (`proj.<slug>`) is read and written as the
project's roles allow (docs/authorization.md: `data.read`, `data.write`, `data.delete`).
Large listings stream as NDJSON with `Accept: application/x-ndjson`.
"""


def create_app(
    settings: DatalakeSettings | None = None,
    *,
    link: GatewayLink | None = None,
    validator: TokenValidator | None = None,
    backend: DatalakeBackend | None = None,
) -> FastAPI:
    """Build the datalake app, linked to the gateway by ``link`` (the embedded gateway's),
    else by one over HTTP from the settings (vre_common.link; ``validator`` replaces the
    settings' one); its scope service is offered to a mounting gateway, which creates project
    scopes with it in-process. ``backend`` replaces the Rucio one (tests)."""
    settings = settings or DatalakeSettings()
    link = link or GatewayLink.from_settings(settings, validator=validator)
    factory = Factory.from_settings(settings, link, backend=backend)
    app = create_service_app(
        service="datalake",
        title="VRE datalake",
        description=DESCRIPTION,
        link=link,
        factory=factory,
    )
    for module in (catalogue, dids, files, rules):
        app.include_router(module.router)
    link.offer_scope_admin(factory.scopes)
    # Rucio is external: reported, never a reason to leave the Service (readiness docstring).
    serve_readiness(app, "datalake", {"rucio": factory.backend.ping}, optional=frozenset({"rucio"}))
    return app
