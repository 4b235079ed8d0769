"""Run inside an environment made from one service's lock file only (what its image has):
import every module of the service, build its app, answer /healthz and /openapi.json.

    python app_check.py SERVICE
Exits non-zero with the missing module's name when the lock file lacks a dependency.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

# Modules that run elsewhere by design: the REANA worker in the validator's environment; the
# gateway's embedded mode (every service in one process, `vre up`) is not what its image runs.
ELSEWHERE = (
    "vre_workflows.validation.reana_worker",  # these two run in .venv-reana
    "vre_workflows.validation.reana_loader",
    "vre_gateway.embedded",
)
SETTINGS = {
    "gateway": ("vre_gateway.config", "GatewaySettings", {"mode": "distributed"}),
    "datalake": ("vre_datalake.config", "DatalakeSettings", {}),
    "workflows": ("vre_workflows.config", "WorkflowsSettings", {}),
    "catalogue": ("vre_catalogue.config", "CatalogueSettings", {}),
    "zenodo": ("vre_zenodo.config", "ZenodoSettings", {}),
    "ivoa": ("vre_ivoa.config", "IvoaSettings", {}),
}


def main(service: str) -> int:
    """Import, build, call."""
    package = importlib.import_module(f"vre_{service}")
    modules = 0
    for info in pkgutil.walk_packages(package.__path__, f"vre_{service}."):
        if info.name.startswith(ELSEWHERE) or info.name.endswith(".__main__"):
            continue
        importlib.import_module(info.name)
        modules += 1
    import httpx

    from vre_common.testing import TestIssuer

    module, name, extra = SETTINGS[service]
    cls = getattr(importlib.import_module(module), name)
    issuer = TestIssuer()
    kwargs = dict(extra)
    with tempfile.TemporaryDirectory() as tmp:
        if "data_dir" in cls.model_fields:
            kwargs["data_dir"] = Path(tmp)
        if "data" in cls.model_fields:
            kwargs["data"] = Path(tmp)
        settings = cls(auth=issuer.auth_settings(), **kwargs)
        create_app = importlib.import_module(f"vre_{service}.main").create_app
        app = create_app(settings, validator=issuer.validator())

        async def call() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                health = await client.get("/healthz")
                assert health.status_code == 200, health.text
                spec = await client.get("/openapi.json")
                assert spec.status_code == 200, spec.text[:500]
                metrics = await client.get("/metrics")
                assert "vre_http_requests_total" in metrics.text

        asyncio.run(call())
    print(f"{service}: {modules} modules imported, app answers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
