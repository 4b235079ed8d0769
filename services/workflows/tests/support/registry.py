"""A real container registry on loopback (Debian's docker-registry, the CNCF distribution
registry) with a tiny image pushed into it, for the pull-policy tests (recipes/containers.md).

The image holds bash, cat and the libraries they link (copied from this machine): a few MB,
built and pushed in about a second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from vre_common.testing import free_port

PODMAN_CONF = (
    "[containers]\n"
    'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
    "[engine]\n"
    'runtime = "runc"\n'
)


def missing_tools() -> list[str]:
    """Programs the registry tests need that are not installed."""
    return [t for t in ("docker-registry", "podman") if shutil.which(t) is None]


@dataclass
class Registry:
    """A running registry and the podman configuration that reaches it."""

    host: str
    process: subprocess.Popen[bytes]
    containers_conf: Path
    registries_conf: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.containers_conf),
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
        }

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def forget(self, image: str) -> None:
        """Remove ``image`` from local storage (the next use must pull it)."""
        self.podman("rmi", "--force", image, check=False)

    def has_locally(self, image: str) -> bool:
        return self.podman("image", "exists", image, check=False).returncode == 0


def _tiny_rootfs(tar_path: Path) -> None:
    programs = [shutil.which(p) for p in ("bash", "cat", "sleep")]
    files: set[str] = set()
    for program in programs:
        assert program is not None
        files.add(os.path.realpath(program))
        out = subprocess.run(
            ["ldd", program],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in out.splitlines():
            parts = line.split()
            for part in parts:
                if part.startswith("/"):
                    files.add(part)
    with tarfile.open(tar_path, "w") as tar:
        for folder in ("tmp", "workspace", "bin", "usr/bin"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        for path in sorted(files):  # real files under the names the loader asks for
            tar.add(os.path.realpath(path), arcname=path.lstrip("/"))
        for name, program in zip(("bash", "cat", "sleep"), programs, strict=True):
            assert program is not None
            real = os.path.realpath(program).lstrip("/")
            for where in (f"bin/{name}", f"usr/bin/{name}"):
                if where != real:
                    link = tarfile.TarInfo(where)
                    link.type = tarfile.SYMTYPE
                    link.linkname = "/" + real
                    tar.addfile(link)


@contextlib.contextmanager
def running_registry(root: Path) -> Iterator[Registry]:
    """Start the registry on a free loopback port; stop it by its pid afterwards."""
    port = free_port()
    host = f"127.0.0.1:{port}"
    (root / "data").mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}\n"
    )
    containers_conf = root / "containers.conf"
    containers_conf.write_text(PODMAN_CONF)
    registries_conf = root / "registries.conf"
    registries_conf.write_text(
        "unqualified-search-registries = []\n\n"
        f'[[registry]]\nlocation = "{host}"\ninsecure = true\n'
    )
    log = (root / "registry.log").open("ab")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    registry = Registry(host, process, containers_conf, registries_conf)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{host}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "registry.log").read_text()[-2000:])
            time.sleep(0.05)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def push_tiny_image(registry: Registry, name: str, work: Path) -> str:
    """Build the tiny image, push it as ``<registry>/<name>``, and drop the local copy."""
    image = f"{registry.host}/{name}"
    tar_path = work / "tiny.tar"
    _tiny_rootfs(tar_path)
    registry.podman("import", str(tar_path), image)
    registry.podman("push", image)
    registry.forget(image)
    return image
