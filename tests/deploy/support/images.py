"""Podman on these machines, and a Python base image made locally with debootstrap.

No registry is reachable from CI, so the service images are built ``FROM`` a base made here:
Debian minbase with python3 and python3-venv (the same Python 3.11 as ``python:3.11-slim``),
imported into podman and cached as a tar file (``podman save``/``podman load``) under
``$VRE_IMAGE_CACHE`` or ``~/.cache/vre-images``. The Debian mirror is read from apt's own
sources at run time. Podman needs two settings here (shared/recipes/containers.md), given
through a ``containers.conf`` named by ``CONTAINERS_CONF``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BASE_IMAGE = "localhost/vre-python-base:bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def cache_dir() -> Path:
    """Where the base image's tar file is kept between runs."""
    root = os.environ.get("VRE_IMAGE_CACHE") or Path.home() / ".cache" / "vre-images"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def podman_env() -> dict[str, str]:
    """The environment for every podman command (CONTAINERS_CONF with the two fixes)."""
    conf = cache_dir() / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` and return its captured output."""
    result = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"podman {' '.join(args[:3])} … exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def podman_unusable_reason() -> str | None:
    """Why podman cannot run containers here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install -y podman runc)"
    if shutil.which("runc") is None:
        return "runc is not installed (apt-get install -y runc)"
    try:
        result = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman info failed: {exc}"
    if result.returncode != 0:
        return f"podman info failed: {result.stderr.strip()[-500:]}"
    return None


def debian_mirror() -> str:
    """The Debian archive apt uses on this machine (deb822 sources or sources.list)."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in candidates:
        uris: list[str] = []
        suites: list[str] = []
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "URIs":
                uris = value.split()
            elif key.strip() == "Suites":
                suites = value.split()
            elif not line.strip() and uris:
                if SUITE in suites:
                    return uris[0]
                uris, suites = [], []
        if uris and SUITE in suites:
            return uris[0]
    sources_list = Path("/etc/apt/sources.list")
    if sources_list.exists():
        for line in sources_list.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                return parts[1] if not parts[1].startswith("[") else parts[2]
    raise RuntimeError(f"no {SUITE} archive in apt's sources: cannot debootstrap a base image")


def image_exists(name: str) -> bool:
    """True if podman has an image of that name."""
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_python_base() -> tuple[str, dict[str, float]]:
    """The local Python base image (made, or loaded from the cache); seconds per step."""
    timings: dict[str, float] = {}
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE, timings
    archive = cache_dir() / "vre-python-base-bookworm.tar"
    if archive.exists():
        started = time.perf_counter()
        podman("load", "-q", "-i", str(archive))
        timings["load"] = time.perf_counter() - started
        if image_exists(BASE_IMAGE):
            return BASE_IMAGE, timings
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install -y debootstrap)")
    with tempfile.TemporaryDirectory(prefix="vre-rootfs-", dir=cache_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs"
        started = time.perf_counter()
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                debian_mirror(),
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        timings["debootstrap"] = time.perf_counter() - started
        # apt lists and caches are not needed in a base image
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        started = time.perf_counter()
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(
                ["podman", "import", "-q", "-", BASE_IMAGE],
                stdin=tar.stdout,
                env=podman_env(),
                check=True,
                capture_output=True,
                timeout=600,
            )
        if tar.returncode != 0:
            raise RuntimeError(f"tar of the base image's root folder exited {tar.returncode}")
        timings["import"] = time.perf_counter() - started
    started = time.perf_counter()
    partial = archive.with_suffix(".partial")
    podman("save", "-q", "-o", str(partial), BASE_IMAGE)
    partial.replace(archive)
    timings["save"] = time.perf_counter() - started
    return BASE_IMAGE, timings


def build_image(name: str, base: str, repo: Path) -> tuple[str, float]:
    """``podman build`` deploy/docker/<name>.Dockerfile on ``base``; the tag and seconds."""
    tag = f"localhost/vre-{name}:test"
    started = time.perf_counter()
    args = [
        "build",
        "--format", "docker",  # keeps HEALTHCHECK (the OCI format has none)
        "-f", str(repo / "deploy" / "docker" / f"{name}.Dockerfile"),
        "--build-arg", f"PYTHON_IMAGE={base}",
        "-t", tag,
    ]  # fmt: skip
    if HOST_CA_BUNDLE.exists():  # HTTPS here goes through a certificate-rewriting proxy
        args += ["--secret", f"id=ca-bundle,src={HOST_CA_BUNDLE}"]
    podman(*args, str(repo), timeout=1800)
    return tag, time.perf_counter() - started


def wait_healthy(container: str, seconds: float) -> bool:
    """Run the container's HEALTHCHECK until it passes (podman here has no systemd timers)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if podman("healthcheck", "run", container, check=False).returncode == 0:
            return True
        time.sleep(1.0)
    return False
