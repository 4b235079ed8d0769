"""Each image installs only its service's lock file: prove that this is enough.

For every service, a fresh environment is made from ``requirements/<service>.txt`` alone
(hash-checked, as in the image), the project's packages are added without dependencies, and
the service's every module is imported, its app built and called (/healthz, /openapi.json,
/metrics) inside that environment. A dependency missing from a service's lock file fails
here, not in a container at deploy time.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO
from tests.deploy.support.dockerfiles import SERVICES

UV = Path(sys.prefix) / "bin" / "uv"
CHECK = Path(__file__).with_name("support") / "app_check.py"


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def build_and_check(service: str, root: Path) -> str:
    venv = root / service
    python = str(venv / "bin" / "python")
    steps = [
        (str(UV), "venv", "-q", "--python", sys.executable, str(venv)),
        (str(UV), "pip", "sync", "-q", "--python", python, "--require-hashes",
         f"requirements/{service}.txt"),
        (str(UV), "pip", "install", "-q", "--python", python, "--offline", "--no-deps",
         "--no-build-isolation", "-e", "libs/common", "-e", f"services/{service}"),
        (python, str(CHECK), service),
    ]  # fmt: skip
    for step in steps:
        result = run(*step)
        if result.returncode != 0:
            return f"{service}: {' '.join(step[:3])} … failed:\n{result.stderr[-2500:]}"
    return ""


@pytest.mark.slow
def test_each_service_runs_from_its_own_lock_file(tmp_path: Path) -> None:
    if not UV.exists():
        pytest.fail(f"{UV} not found: the project environment installs uv (bootstrap.txt)")
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(lambda s: build_and_check(s, tmp_path), SERVICES) if f]
    assert not failures, "\n\n".join(failures)
