"""The workflows service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from vre_common.auth import TokenValidator
from vre_common.link import GatewayLink, create_service_app, serve_readiness
from vre_workflows.backends.base import ContainerRuntime, DatalakePort
from vre_workflows.config import WorkflowsSettings
from vre_workflows.factory import Factory
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
    link: GatewayLink | None = None,
    validator: TokenValidator | None = None,
    datalake: DatalakePort | None = None,
    container_runtime: ContainerRuntime | None = None,
) -> FastAPI:
    """Build the workflows app, linked to the gateway by ``link`` (the embedded gateway's),
    else by one over HTTP from the settings (vre_common.link; no gateway: project runs are
    refused with 503 and no provenance is recorded).

    ``validator`` replaces the settings' one; ``datalake`` and ``container_runtime`` replace
    the implementations the factory would choose from settings (tests).
    """
    settings = settings or WorkflowsSettings()
    link = link or GatewayLink.from_settings(settings, validator=validator)
    factory = Factory.from_settings(settings, link, datalake=datalake, runtime=container_runtime)
    app = create_service_app(
        service="workflows",
        title="VRE workflows",
        description=DESCRIPTION,
        link=link,
        factory=factory,
    )
    for module in (validate, runs, records, credentials):
        app.include_router(module.router)
    # Workflow backends (REANA servers, the Slurm controller) are external systems: reported
    # with their reason, without making this process unready.
    remote = {b.name: b.ping for b in factory.backends.all()}
    serve_readiness(
        app,
        "workflows",
        {"database": factory.db.ping, "reana-validator": factory.worker.ping, **remote},
        optional=frozenset(remote),
    )
    return app
