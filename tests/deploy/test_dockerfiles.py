"""The Dockerfiles: hadolint, and the rules every VRE image follows (base image as a build
argument, multi-stage, hash-checked installs from the image's own lock file, non-root, a
health check on /healthz, the service's app factory), plus the lock files and the build
context they read."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, tool
from tests.deploy.support.dockerfiles import DOCKER_DIR, IMAGES, SERVICES, dockerfile

LOCKS = {**{s: s for s in SERVICES}, "rucio": "rucio-server", "webdav": "webdav"}
REQUIREMENTS = REPO / "requirements"


def pins(path: Path) -> dict[str, str]:
    """name → version of a requirements-style lock file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\;]+)", line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_hadolint_finds_nothing() -> None:
    files = sorted(DOCKER_DIR.glob("*.Dockerfile"))
    assert {f.name.removesuffix(".Dockerfile") for f in files} == set(IMAGES)
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", "--failure-threshold", "info", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3008" in result.stdout or "DL3006" in result.stdout


@pytest.mark.parametrize("image", IMAGES)
def test_image_rules(image: str) -> None:
    parsed = dockerfile(image)
    assert parsed.args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert len(parsed.stages) >= 2
    assert all(stage.base == "${PYTHON_IMAGE}" for stage in parsed.stages)
    builder, final = parsed.stages[0], parsed.final
    assert builder.name == "builder"

    # dependencies: the image's own lock file, hashes required, uv from the bootstrap lock
    runs = " ".join(i.args for i in builder.all("RUN"))
    lock = f"requirements/{LOCKS[image]}.txt"
    assert f"--require-hashes {lock}" in re.sub(r"\s+", " ", runs)
    assert "--require-hashes --no-deps -r requirements/bootstrap.txt" in re.sub(r"\s+", " ", runs)
    assert (REPO / lock).exists()
    copies = [i.args for i in builder.all("COPY")]
    assert any(lock in c for c in copies)
    # the final stage only takes what the builder made, and runs as the unprivileged user
    assert all(
        "--from=builder" in c
        or c.startswith("deploy/")
        or c.startswith("libs/rucio-local/src/vre_rucio_local/scripts/")
        for c in (i.args for i in final.all("COPY"))
    )
    users = final.all("USER")
    assert users
    assert users[-1].args == "10001:10001"
    assert not final.all("RUN") or "useradd" in final.all("RUN")[0].args

    healthcheck = final.all("HEALTHCHECK")
    assert len(healthcheck) == 1
    probe = healthcheck[0].exec_form()
    assert probe is not None
    assert probe[0] == "python", "no curl in the image: Python probes"
    if image in SERVICES:
        assert "http://127.0.0.1:8000/healthz" in " ".join(probe)
        assert "urllib.request" in " ".join(probe)
        command = final.all("CMD")[-1].exec_form()
        assert command is not None
        assert command[:3] == ["uvicorn", "--factory", f"vre_{image}.main:create_app"]
        assert command[command.index("--port") + 1] == "8000"
        assert command[command.index("--host") + 1] == "0.0.0.0"
        assert "--workers" not in command, "one process per container: one metrics registry"
        # the project's own packages, editable, without dependencies, never from the network
        installs = [i.args for i in builder.all("RUN") if " -e " in i.args]
        assert len(installs) == 1
        flat = re.sub(r"\s+", " ", installs[0])
        assert "--offline" in flat
        assert "--no-deps" in flat
        assert f"-e libs/common -e services/{image}" in flat
        # no other service's code in this image
        sources = " ".join(copies)
        for other in SERVICES:
            if other != image:
                assert f"services/{other}/" not in sources, other
        assert final.env()["VRE_DATA"] == "/data"


def test_gateway_image_runs_the_distributed_mode() -> None:
    env = dockerfile("gateway").final.env()
    assert env["VRE_MODE"] == "distributed"
    assert env["VRE_HOST"] == "0.0.0.0"


def test_workflows_image_has_the_reana_validator() -> None:
    parsed = dockerfile("workflows")
    runs = re.sub(r"\s+", " ", " ".join(i.args for i in parsed.stages[0].all("RUN")))
    assert "/opt/venv-reana/bin/python --require-hashes requirements/reana-validator.txt" in runs
    env = parsed.final.env()
    assert env["VRE_WORKFLOWS_VALIDATOR_PYTHON"] == "/opt/venv-reana/bin/python"
    assert any("/opt/venv-reana" in i.args for i in parsed.final.all("COPY"))


def test_rucio_image_roles() -> None:
    parsed = dockerfile("rucio")
    entry = parsed.final.all("ENTRYPOINT")[-1].exec_form()
    assert entry == ["python", "/opt/vre-rucio/vre-rucio"]
    assert parsed.final.all("CMD")[-1].exec_form() == ["server"]
    assert pins(REQUIREMENTS / "rucio-server.txt")["rucio"] == "41.5.1"
    # the scripts it copies are the embedded mode's own
    for copy in parsed.final.all("COPY"):
        if "--from=" in copy.args:
            continue
        for source in copy.args.split()[:-1]:
            if not source.startswith("--"):
                assert (REPO / source).exists(), source


@pytest.mark.parametrize("lock", sorted({*LOCKS.values(), "tools"}))
def test_lock_files_pin_versions_and_hashes_only(lock: str) -> None:
    path = REQUIREMENTS / f"{lock}.txt"
    text = path.read_text()
    assert "://" not in text, "no download addresses in lock files"
    assert "--index-url" not in text
    assert "--find-links" not in text
    entries = re.findall(
        r"^[A-Za-z0-9_.\-\[\],]+==\S+(?: \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n?)+)",
        text,
        re.M,
    )
    assert len(entries) == len(pins(path)), "every pin carries hashes"


@pytest.mark.parametrize("lock", [*SERVICES, "webdav", "tools"])
def test_image_locks_match_what_ci_tests(lock: str) -> None:
    """Compiled with main.txt as constraints: the same versions as the tested environment."""
    main = pins(REQUIREMENTS / "main.txt")
    header = (REQUIREMENTS / f"{lock}.txt").read_text().splitlines()[1]
    assert "-c main.txt" in header
    assert f"{lock}.in" in header
    assert f"-o {lock}.txt" in header
    assert "--generate-hashes" in header
    assert "--python-version 3.11" in header
    for name, version in pins(REQUIREMENTS / f"{lock}.txt").items():
        if name in main:
            assert main[name] == version, name


def test_service_locks_hold_only_their_service() -> None:
    gateway = pins(REQUIREMENTS / "gateway.txt")
    datalake = pins(REQUIREMENTS / "datalake.txt")
    workflows = pins(REQUIREMENTS / "workflows.txt")
    assert "snakemake" in workflows
    assert "cwltool" in workflows
    for other in (gateway, datalake, pins(REQUIREMENTS / "catalogue.txt")):
        assert "snakemake" not in other
        assert "cwltool" not in other
    assert "aiohttp" in gateway
    assert "aiohttp" not in datalake
    for lock in SERVICES:
        packages = pins(REQUIREMENTS / f"{lock}.txt")
        for tool_only in ("pytest", "ruff", "mypy", "schemathesis", "rucio-clients", "rucio"):
            assert tool_only not in packages, (lock, tool_only)
        for needed in ("uvicorn", "asyncpg", "psycopg", "hatchling", "alembic", "joserfc"):
            assert needed in packages, (lock, needed)


def test_build_context_holds_what_the_images_copy() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: nothing enters a build unless named"

    def included(path: str) -> bool:
        keep = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            glob = pattern.lstrip("!").strip("/")
            if (
                fnmatch.fnmatch(path, glob)
                or fnmatch.fnmatch(path, glob + "/*")
                or any(
                    fnmatch.fnmatch(parent, glob)
                    for parent in [str(p) for p in Path(path).parents if str(p) != "."]
                )
            ):
                keep = negate
        return keep

    for image in IMAGES:
        for stage in dockerfile(image).stages:
            for copy in stage.all("COPY"):
                if "--from=" in copy.args:
                    continue
                for source in copy.args.split()[:-1]:
                    assert included(source), f"{image}: {source} is outside the build context"
    for excluded in (".venv/bin/python", ".vre/runtime.json", "tests/deploy/test_compose.py"):
        assert not included(excluded), excluded
