"""The gateway image, built with podman on a locally made Python base, runs and answers.

This proves the Dockerfile rather than only linting it: the build (hash-checked installs
from the image's lock file, editable project packages), the migration one-shot
(`vre-migrate`), the non-root user, a read-only root filesystem as in k8s/, the image's
HEALTHCHECK, and the app factory in distributed mode. Skipped, with the reason, only where
podman cannot run containers at all. Timings are printed (base image, build, start).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import REPO
from tests.deploy.support.images import build_image, podman
from vre_common.testing import free_port

pytestmark = pytest.mark.slow


def test_gateway_image_builds_runs_and_answers_healthz(
    python_base: tuple[str, dict[str, float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, base_timings = python_base
    tag, build_seconds = build_image("gateway", base, REPO)

    image = json.loads(podman("image", "inspect", tag).stdout)[0]
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert "/healthz" in " ".join(image["Healthcheck"]["Test"])
    assert config["Cmd"][:3] == ["uvicorn", "--factory", "vre_gateway.main:create_app"]

    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the container's user (10001) writes the SQLite database here
    database = ["-e", "VRE_DATABASE__URL=sqlite+aiosqlite:////data/gateway.db"]
    volume = ["-v", f"{data}:/data"]

    started = time.perf_counter()
    migrate = podman("run", "--rm", *volume, *database, tag, "vre-migrate", "gateway")
    migrate_seconds = time.perf_counter() - started
    assert "upgraded" in migrate.stdout
    assert (data / "gateway.db").exists()
    check = podman("run", "--rm", *volume, *database, tag, "vre-migrate", "gateway", "--check")
    assert "is current" in check.stdout

    name = f"vre-gateway-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = time.perf_counter()
    podman(
        "run", "-d", "--name", name,
        "--read-only", "--tmpfs", "/tmp",  # as readOnlyRootFilesystem in k8s/
        "-p", f"127.0.0.1:{port}:8000",
        *volume, *database, "-e", "VRE_MIGRATIONS=verify",
        tag,
    )  # fmt: skip
    try:
        health = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        start_seconds = time.perf_counter() - started
        logs = podman("logs", name, check=False)
        assert health is not None, f"no answer in 90 s:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}"
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "service": "gateway"}

        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        gateway_state = ready.json()["dependencies"][0]
        assert (gateway_state["name"], gateway_state["up"]) == ("gateway", True)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'vre_http_requests_total{method="GET",route="/healthz",service="gateway"' in metrics
        refused = httpx.get(f"http://127.0.0.1:{port}/me", timeout=5)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        # the landing page, a guide and the dashboard ship in the image
        landing = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert landing.status_code == 200
        assert "Science Project" in landing.text
        assert httpx.get(f"http://127.0.0.1:{port}/guide/operations", timeout=5).status_code == 200
        dashboard = httpx.get(f"http://127.0.0.1:{port}/app/projects", timeout=5)
        assert dashboard.status_code == 200
        assert '<div id="root">' in dashboard.text

        # the image's own HEALTHCHECK command, run by podman inside the container
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        podman("rm", "-f", "-t", "2", name, check=False)

    size = json.loads(podman("image", "inspect", tag).stdout)[0]["Size"]
    with capsys.disabled():
        made = ", ".join(f"{k} {v:.1f} s" for k, v in base_timings.items()) or "present"
        print(
            f"\n[gateway image] base image: {made}; build {build_seconds:.1f} s; "
            f"migrate {migrate_seconds:.1f} s; start → /healthz {start_seconds:.1f} s; "
            f"size {size / 1e6:.0f} MB"
        )
