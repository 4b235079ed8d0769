"""The image pipeline: push to a real registry, digests recorded, sites pinned to them.

- `vre-images push` against a registry on loopback (Debian's ``docker-registry``, the
  reference implementation of the OCI distribution API): the digest it records is the one
  the registry serves — podman pulls the image back by that digest.
- `vre-images pin` writes the digests into a copy of a site, and the rendered site (pods and
  migration Jobs) runs exactly those digests; Flux's image-policy markers survive.
- The CI workflow builds, pushes and keeps digests for every service, and tags main's builds
  so that the development site's image policies select them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.conftest import REPO
from tests.deploy.support.dockerfiles import SERVICES
from vre_common.testing import free_port

SCRIPT = REPO / "deploy" / "bin" / "vre-images"
WORKFLOW = REPO / ".github" / "workflows" / "images.yml"


def images_tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


def digest_of(text: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The manifests a site builds on, copied (relative references stay valid)."""
    shutil.copytree(REPO / "k8s", tmp_path / "k8s")
    shutil.copytree(REPO / "deploy" / "monitoring", tmp_path / "deploy" / "monitoring")
    return tmp_path


def rendered_images(kubectl: str, path: Path) -> set[str]:
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    return {
        container["image"]
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc["kind"] in ("Deployment", "Job")
        for container in doc["spec"]["template"]["spec"]["containers"]
    }


def test_pin_writes_the_digests_a_site_and_its_migrations_run(
    repo_copy: Path, kubectl: str
) -> None:
    digests = {f"vre-{s}": digest_of(s) for s in SERVICES}
    file = repo_copy / "digests.json"
    file.write_text(json.dumps(digests))
    for site in ("example", "example-dev"):
        folder = repo_copy / "k8s" / "sites" / site
        result = images_tool(
            "pin", "--registry", "registry.site.test/vre", "--digests", file, "--site", folder
        )
        assert result.returncode == 0, result.stderr
        expected = {f"registry.site.test/vre/{name}@{d}" for name, d in digests.items()}
        assert rendered_images(kubectl, folder) == expected
        migrations = rendered_images(kubectl, folder / "migrations")
        assert migrations == expected
    # the development site's Flux markers are kept on the lines pin changed
    text = (repo_copy / "k8s/sites/example-dev/images/kustomization.yaml").read_text()
    for service in SERVICES:
        assert f'{{"$imagepolicy": "flux-system:vre-{service}:digest"}}' in text


def test_pin_refuses_what_is_not_a_digest(repo_copy: Path) -> None:
    site = repo_copy / "k8s" / "sites" / "example"
    before = (site / "images" / "kustomization.yaml").read_text()
    file = repo_copy / "digests.json"
    file.write_text(json.dumps({"vre-gateway": "latest"}))
    result = images_tool("pin", "--registry", "r.test/vre", "--digests", file, "--site", site)
    assert result.returncode != 0
    assert "not a sha256 digest" in result.stderr
    file.write_text(json.dumps({"vre-unknown": digest_of("x")}))
    result = images_tool("pin", "--registry", "r.test/vre", "--digests", file, "--site", site)
    assert result.returncode != 0
    assert "vre-unknown" in result.stderr
    assert (site / "images" / "kustomization.yaml").read_text() == before


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry (distribution) on a free loopback port, plain HTTP."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is missing: `make system-deps` installs it")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry")}},
                "http": {"addr": f"127.0.0.1:{port}"},
            }
        )
    )
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_push_records_the_digest_the_registry_serves(registry: str, tmp_path: Path) -> None:
    from tests.deploy.support.images import podman, podman_unusable_reason

    reason = podman_unusable_reason()
    if reason is not None:
        pytest.skip(f"podman cannot run here: {reason}")
    # a real (tiny) image, made from a tarball, stands in for a built service image
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "release").write_text(f"vre {tmp_path.name}\n")
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as archive:
        archive.add(payload / "release", arcname="release")
    repository = f"{registry}/vre"
    podman("import", str(tarball), f"{repository}/vre-gateway:t1")
    digests = tmp_path / "digests.json"
    result = subprocess.run(
        [
            str(SCRIPT), "push", "--registry", repository, "--tag", "t1", "--digests",
            str(digests), "--push-arg=--tls-verify=false", "gateway",
        ],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, **_podman_env()},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    digest = json.loads(digests.read_text())["vre-gateway"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    # the registry serves that manifest under that digest
    manifest = httpx.get(
        f"http://{registry}/v2/vre/vre-gateway/manifests/t1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                 "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )  # fmt: skip
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == digest
    podman("rmi", f"{repository}/vre-gateway:t1")
    podman("pull", "--tls-verify=false", f"{repository}/vre-gateway@{digest}", timeout=300)
    podman("rmi", f"{repository}/vre-gateway@{digest}")


def _podman_env() -> dict[str, str]:
    from tests.deploy.support.images import podman_env

    return {"CONTAINERS_CONF": podman_env()["CONTAINERS_CONF"]}


def test_ci_builds_pushes_and_pins_every_image() -> None:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1: on → True
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["push"]["tags"] == ["v*"]
    steps = workflow["jobs"]["images"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert "make images" in commands
    assert "make push-images" in commands
    assert "DIGESTS=build/image-digests.json" in commands
    assert "make pin-images" in commands
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in steps)
    makefile = (REPO / "Makefile").read_text()
    for target in ("images", "push-images", "pin-images"):
        assert re.search(rf"^{target}:\n\tdeploy/bin/vre-images ", makefile, re.M), target
    # every service with a Dockerfile is built (the script's default list)
    script = SCRIPT.read_text()
    listed = re.search(r"^SERVICES = \(([^)]*)\)", script, re.M)
    assert listed is not None
    assert set(re.findall(r'"(\w+)"', listed.group(1))) == set(SERVICES)
    # main's tags are what the development site's image policies select and order
    tag_line = next(line for line in commands.splitlines() if "main-${GITHUB_SHA" in line)
    example = "main-0123456789ab-1765000000"
    assert "main-${GITHUB_SHA::12}-$(date +%s)" in tag_line
    policies = [
        doc
        for doc in yaml.safe_load_all((REPO / "k8s/sites/example-dev/flux/images.yaml").read_text())
        if doc and doc["kind"] == "ImagePolicy"
    ]
    assert len(policies) == len(SERVICES)
    for policy in policies:
        pattern = policy["spec"]["filterTags"]["pattern"]
        match = re.fullmatch(pattern, example)
        assert match is not None
        assert match.group("ts") == "1765000000"
