"""Steps in real containers (podman) from an image built locally once and cached.

The image is a minimal Debian made by debootstrap from the mirror apt already uses (read from
apt's sources at run time) and imported into podman as ``localhost/vre-workflows-test``; later
runs find it in podman's storage. Skipped, with the reason, only where podman cannot run.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import ContainerSettings
from vre_workflows.main import create_app

IMAGE = "localhost/vre-workflows-test:bookworm"
CONF = (
    "[containers]\n"
    'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
    "[engine]\n"
    'runtime = "runc"\n'
)


def _mirror() -> str | None:
    for source in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if source.exists():
            text = source.read_text()
            match = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(
                r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+\s+main", text, re.M
            )
            if match:
                return match.group(1)
    return None


@pytest.fixture(scope="session")
def podman_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install -y podman runc)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    if subprocess.run(["podman", "image", "exists", IMAGE], env=env, check=False).returncode:
        mirror = _mirror()
        if shutil.which("debootstrap") is None or mirror is None:
            pytest.skip("the test image needs debootstrap and apt's Debian mirror")
        rootfs = tmp_path_factory.mktemp("rootfs")
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
            check=True,
            capture_output=True,
            timeout=600,
        )
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            assert tar.stdout is not None
            with tar.stdout:
                subprocess.run(
                    ["podman", "import", "-", IMAGE],
                    stdin=tar.stdout,
                    env=env,
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
        shutil.rmtree(rootfs, ignore_errors=True)
    probe = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", IMAGE, "true"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if probe.returncode:
        pytest.skip(f"podman cannot start containers here: {probe.stderr.decode()[-300:]}")
    return conf


@pytest.fixture
async def cwf(
    podman_conf: Path,
    make_settings: SettingsFactory,
    issuer: TestIssuer,
    datalake: PosixDatalake,
) -> AsyncIterator[Harness]:
    settings = make_settings(
        local={
            "allow_host_execution": False,
            "containers": ContainerSettings(runtime="podman", containers_conf=podman_conf),
        }
    )
    app = create_app(settings, validator=issuer.validator(), datalake=datalake)
    async with app_client(app) as client:
        yield Harness(app=app, client=client, issuer=issuer, datalake=datalake)


def _containers(conf: Path, prefix: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "--all", "--filter", f"name=^{prefix}", "--format", "{{.Names}}"],
        env={**os.environ, "CONTAINERS_CONF": str(conf)},
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().split()


async def test_a_step_runs_isolated_in_its_image(cwf: Harness) -> None:
    cwf.datalake.add_file("user.alice", "in.txt", b"from the lake\n")
    spec = serial_spec(
        [
            step(
                "inspect",
                "cat in.txt > report.txt",
                "(touch /etc/intruder 2>/dev/null && echo root-writable || echo root-readonly)"
                " >> report.txt",
                "(echo probe > /tmp/probe && echo tmp-writable) >> report.txt",
                "ls /sys/class/net | tr '\\n' ' ' >> report.txt; echo >> report.txt",
                "(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                " || cat /sys/fs/cgroup/memory.max) >> report.txt",
                "echo $$REANA_WORKSPACE $$HOME >> report.txt",
                image=IMAGE,
                kubernetes_memory_limit="64Mi",
            )
        ],
        outputs=["report.txt"],
    )
    run = await cwf.submit(
        spec=spec, inputs=[{"did": "user.alice:in.txt"}], output={"scope": "user.alice"}
    )
    assert run["steps"][0]["execution"] == "container"
    done = await cwf.wait(run["id"], within=120)
    assert done["status"] == "finished", done
    report = (
        await cwf.client.get(f"/runs/{run['id']}/outputs/report.txt", headers=cwf.headers())
    ).text.splitlines()
    assert report[0] == "from the lake"
    assert report[1] == "root-readonly"
    assert report[2] == "tmp-writable"
    assert report[3].split() == ["lo"]  # no network but loopback
    assert int(report[4]) == 64 * 1024 * 1024
    assert report[5] == "/workspace /workspace"
    assert done["outputs"][0]["did"] is not None


async def test_the_memory_limit_is_enforced(cwf: Harness) -> None:
    spec = serial_spec(
        [
            step(
                "hog",
                "head -c 300000000 /dev/zero | tail -c 300000000 > /dev/null",
                image=IMAGE,
                kubernetes_memory_limit="32Mi",
            )
        ]
    )
    run = await cwf.submit(spec=spec)
    done = await cwf.wait(run["id"], within=120)
    assert done["status"] == "failed"
    assert done["steps"][0]["exit_code"] in (137, 1)


async def test_cancel_removes_the_container(cwf: Harness, podman_conf: Path) -> None:
    run = await cwf.submit(spec=serial_spec([step("sleepy", "sleep 300", image=IMAGE)]))
    await cwf.wait_step(run["id"], 0, "running")
    prefix = f"vre-{run['id'][:13]}"
    for _ in range(200):
        if _containers(podman_conf, prefix):
            break
        await asyncio.sleep(0.05)
    assert _containers(podman_conf, prefix)
    response = await cwf.client.post(f"/runs/{run['id']}/cancel", headers=cwf.headers())
    assert response.json()["status"] == "cancelled"
    assert _containers(podman_conf, prefix) == []


async def test_a_missing_image_is_named_with_the_way_to_provide_it(cwf: Harness) -> None:
    problem = await cwf.submit(
        expect=422, spec=serial_spec([step("a", "true", image="localhost/not-built:1")])
    )
    assert "localhost/not-built:1" in problem["detail"]
    assert "podman load" in problem["errors"][0]["msg"]
