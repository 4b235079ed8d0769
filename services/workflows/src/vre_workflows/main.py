"""The workflows service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from vre_common.app import create_base_app
from vre_common.auth import TokenValidator, build_validator
from vre_common.lifespan import gateway_event_sink, gateway_policy
from vre_common.readiness import install_readiness
from vre_workflows.backends.base import ContainerRuntime, DatalakePort
from vre_workflows.config import WorkflowsSettings
from vre_workflows.factory import build_components
from vre_workflows.handlers import credentials, records, runs, validate

DESCRIPTION = """\
Reproducible workflow runs on a **local executor**, on **REANA** or on a **Slurm** cluster
(one backend port; `compute_backend: slurmcern` picks Slurm), with Data Lake DIDs as
inputs and declared outputs registered back into the Data Lake.

- `POST /validate` checks a reana.yaml with REANA's official validator and lists every error.
- `POST /runs` submits a run (JSON or multipart with uploaded inputs); `GET /runs/{id}/logs`
  follows it live; outputs are downloadable and, after success, DIDs in the Data Lake.
- `PUT /credentials/reana` registers the caller's REANA token (stored encrypted).
"""


def create_app(
    settings: WorkflowsSettings | None = None,
    *,
    validator: TokenValidator | None = None,
    datalake: DatalakePort | None = None,
    container_runtime: ContainerRuntime | None = None,
) -> FastAPI:
    """Build the workflows app; the gateway passes its own validator when it mounts the app.

    The project policy and the provenance sink are chosen when the app starts: the ones a
    mounting gateway put in ``app.state`` (``policy``, ``provenance_sink``), else the gateway
    at ``settings.gateway_url`` over HTTP (no gateway: project runs are refused with 503 and
    no provenance is recorded).

    ``datalake`` and ``container_runtime`` replace the implementations the factory would
    choose from settings (tests; the embedded gateway may pass an in-process datalake).
    """
    settings = settings or WorkflowsSettings()
    components = build_components(settings, datalake=datalake, runtime=container_runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            policy, directory = gateway_policy(app, settings)
            if directory is not None:
                stack.push_async_callback(directory.aclose)
            components.access.use(policy)
            await components.start()
            stack.push_async_callback(components.stop)
            components.events.start(gateway_event_sink(app, settings))
            yield

    app = create_base_app(
        service="workflows",
        title="VRE workflows",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.components = components
    app.state.validator = validator or build_validator(settings.auth)
    app.include_router(validate.router)
    app.include_router(runs.router)
    app.include_router(records.router)
    app.include_router(credentials.router)
    # Workflow backends (REANA servers, the Slurm controller) are external systems: reported
    # with their reason, without making this process unready.
    remote = {b.name: b.ping for b in components.backends.all()}
    install_readiness(
        app,
        {"database": components.db.ping, "reana-validator": components.worker.ping, **remote},
        optional=frozenset(remote),
    )
    return app
