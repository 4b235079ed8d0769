"""The images docker-compose.yml wires together, run together with podman.

Builds the Rucio, WebDAV and datalake images on the local Python base and starts, on a
podman network of their own, what docker-compose.yml starts for the Data Lake: the WebDAV
storage element (https with its own CA), Rucio's schema bootstrap (one-shot), the Rucio
server, the storage-element registration (`vre-provision-rucio`, one-shot from the datalake
image), the datalake service and Rucio's daemons; each is waited for by its image's
HEALTHCHECK, as Compose would. Rucio runs on SQLite here (PostgreSQL in docker-compose.yml).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import REPO
from tests.deploy.support.images import build_image, podman, wait_healthy
from vre_common.testing import free_port

pytestmark = pytest.mark.slow
PASSWORD = "test-only-password"


@pytest.fixture
def network() -> Iterator[tuple[str, list[str]]]:
    """A podman network of this test, and the names of the containers to remove after it."""
    name = f"vre-test-{uuid.uuid4().hex[:8]}"
    podman("network", "create", name)
    containers: list[str] = []
    try:
        yield name, containers
    finally:
        for container in containers:
            podman("rm", "-f", "-t", "2", container, check=False)
        podman("network", "rm", "-f", name, check=False)


def shared(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    folder.chmod(0o777)  # written by the containers' user 10001
    return folder


def test_datalake_stack_comes_up(
    python_base: tuple[str, dict[str, float]],
    network: tuple[str, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, _ = python_base
    net, containers = network
    timings: dict[str, float] = {}
    images = {}
    for name in ("rucio", "webdav", "datalake"):
        images[name], timings[f"build {name}"] = build_image(name, base, REPO)
    suffix = net.rsplit("-", 1)[1]
    certs, rucio_data, posix = (shared(tmp_path, n) for n in ("certs", "rucio", "posix"))
    rucio_env = [
        "-e",
        "RUCIO_DATABASE_URL=sqlite:////rucio-db/rucio.db",
        "-e",
        "RUCIO_LOG_LEVEL=WARNING",
    ]
    datalake_env = [
        "-e", "VRE_DATALAKE_RUCIO__URL=http://rucio:8080",
        "-e", "VRE_DATALAKE_RUCIO__SERVICE_ACCOUNT=root",
        "-e", "VRE_DATALAKE_RUCIO__SERVICE_USERNAME=vre-admin",
        "-e", f"VRE_DATALAKE_RUCIO__SERVICE_PASSWORD={PASSWORD}",
    ]  # fmt: skip

    def start(name: str, alias: str, *args: str) -> str:
        container = f"{name}-{suffix}"
        containers.append(container)
        podman("run", "-d", "--name", container, "--network", net, "--network-alias", alias, *args)
        return container

    started = time.perf_counter()
    webdav = start("webdav", "webdav", "-v", f"{certs}:/certs", images["webdav"])
    init = podman(
        "run", "--rm", "--network", net, "-v", f"{rucio_data}:/rucio-db", *rucio_env,
        "-e", f"RUCIO_ADMIN_PASSWORD={PASSWORD}", images["rucio"], "init",
    )  # fmt: skip
    assert json.loads(init.stdout.strip().splitlines()[-1])["root_created"] is True
    rucio = start("rucio", "rucio", "-v", f"{rucio_data}:/rucio-db", *rucio_env, images["rucio"])
    assert wait_healthy(rucio, 90), podman("logs", rucio, check=False).stderr[-3000:]
    assert wait_healthy(webdav, 60), podman("logs", webdav, check=False).stderr[-3000:]
    assert (certs / "ca.crt").exists()
    timings["rucio and webdav healthy"] = time.perf_counter() - started

    provision = podman(
        "run", "--rm", "--network", net, "-v", f"{posix}:/data", *datalake_env,
        images["datalake"], "vre-provision-rucio",
        "--posix", "VRE-POSIX=/data/posix", "--webdav", "VRE-WEBDAV=https://webdav:8443/rucio/",
    )  # fmt: skip
    assert "RSEs VRE-POSIX, VRE-WEBDAV" in provision.stdout
    assert (posix / "posix").is_dir()

    port = free_port()
    datalake = start(
        "datalake", "datalake", "-p", f"127.0.0.1:{port}:8000",
        "-v", f"{posix}:/data", "-v", f"{certs}:/certs:ro", *datalake_env,
        "-e", "VRE_DATALAKE_STORAGE__DEFAULT_RSE=VRE-POSIX",
        "-e", "VRE_DATALAKE_STORAGE__WEBDAV_VERIFY=/certs/ca.crt",
        "--read-only", "--tmpfs", "/tmp", images["datalake"],
    )  # fmt: skip
    assert wait_healthy(datalake, 60), podman("logs", datalake, check=False).stderr[-3000:]
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    states = {d["name"]: d["up"] for d in ready.json()["dependencies"]}
    assert states.get("rucio") is True, ready.text

    daemons = start(
        "rucio-daemons", "rucio-daemons", "-v", f"{rucio_data}:/rucio-db",
        "-v", f"{posix}:/data",  # the POSIX storage at the same path as in the datalake
        *rucio_env, "-e", "RUCIO_DAEMON_INTERVAL=2",
        "--health-cmd", '["python", "/opt/vre-rucio/vre-rucio", "healthcheck", "daemons"]',
        images["rucio"], "daemons",
    )  # fmt: skip
    assert wait_healthy(daemons, 120), podman("logs", daemons, check=False).stderr[-3000:]
    timings["whole stack"] = time.perf_counter() - started
    with capsys.disabled():
        print("\n[stack images] " + "; ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
