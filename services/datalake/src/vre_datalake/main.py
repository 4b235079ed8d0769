"""The datalake service's FastAPI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.policy import HttpProjectDirectory, Policy
from vre_common.readiness import install_readiness
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
    validator: TokenValidator | None = None,
    backend: DatalakeBackend | None = None,
) -> FastAPI:
    """Build the datalake app; the gateway passes its own validator when it mounts the app.

    The project policy and the provenance sink are chosen when the app starts: the ones a
    mounting gateway put in ``app.state`` (``policy``, ``provenance_sink``), else the gateway
    at ``settings.gateway_url`` over HTTP. ``app.state.scope_admin`` is the scope creation
    the embedded gateway calls in-process.
    """
    settings = settings or DatalakeSettings()
    factory = Factory.create(settings, backend=backend)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(factory.aclose)
            await factory.prepare_database()
            if factory.storage_tokens is not None:  # the storage token, renewed in time
                refresher = asyncio.create_task(factory.storage_tokens.keep_fresh())
                stack.callback(refresher.cancel)
            policy: Policy | None = getattr(app.state, "policy", None)
            if policy is None and settings.gateway_url:
                directory = HttpProjectDirectory(
                    settings.gateway_url, ttl_seconds=settings.projects.directory_ttl_seconds
                )
                stack.push_async_callback(directory.aclose)
                policy = Policy(directory)
            factory.policy.use(policy)
            sink = getattr(app.state, "provenance_sink", None) or factory.http_event_sink()
            await factory.provenance.start(sink)
            stack.push_async_callback(factory.provenance.stop)
            yield

    app = create_base_app(
        service="datalake",
        title="VRE datalake",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.factory = factory
    app.state.scope_admin = factory.scopes
    app.state.validator = validator or build_validator(settings.auth)
    for module in (catalogue, dids, files, rules):
        app.include_router(module.router)
    # Rucio is external: reported, never a reason to leave the Service (readiness docstring).
    install_readiness(app, {"rucio": factory.backend.ping}, optional=frozenset({"rucio"}))
    return app
