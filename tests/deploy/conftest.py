"""Fixtures of the deployment tests: the repository root and the tools environment.

The tools (hadolint, podman-compose, compose-spec, kubernetes-validate) live in their own
environment, ``.venv-tools`` (requirements/tools.txt), so that ``uv pip sync`` of the project
environment never removes them; kubectl (for ``kubectl kustomize``) comes from the machine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS_VENV = Path(os.environ.get("VRE_TOOLS_VENV", REPO / ".venv-tools"))
INSTALL_HINT = (
    "the deployment tools are missing: create .venv-tools from requirements/tools.txt "
    "(`make deps` does it)"
)


def tool(name: str) -> Path:
    """A command of the tools environment; fails (not skips) when it is missing."""
    path = TOOLS_VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} not found: {INSTALL_HINT}")
    return path


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def tools_python() -> Path:
    """The tools environment's Python (compose-spec, kubernetes-validate are imported there)."""
    return tool("python")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl with its built-in kustomize (preinstalled on the machines)."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed: `kubectl kustomize` renders the k8s overlays")
    return path


@pytest.fixture(scope="session")
def python_base() -> tuple[str, dict[str, float]]:
    """The local Python base image (debootstrap once, then the cache); skips without podman."""
    from tests.deploy.support.images import ensure_python_base, podman_unusable_reason

    reason = podman_unusable_reason()
    if reason is not None:
        pytest.skip(f"podman cannot run containers here: {reason}")
    return ensure_python_base()
