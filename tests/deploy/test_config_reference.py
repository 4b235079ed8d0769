"""docs/configuration.md is generated from the settings classes and must be current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import REPO
from tools.gen_config_reference import OUTPUT, env_names, render, sections, settings_classes

GENERATOR = REPO / "tools" / "gen_config_reference.py"


def test_committed_reference_is_current() -> None:
    assert OUTPUT.read_text() == render(), (
        "docs/configuration.md is out of date: run .venv/bin/python tools/gen_config_reference.py"
    )


def test_output_does_not_depend_on_the_machine(tmp_path: Path) -> None:
    """Another folder, another VRE_DATA: the same document (CI runs in a fresh clone)."""
    env = {**os.environ, "VRE_DATA": str(tmp_path / "elsewhere")}
    out = tmp_path / "configuration.md"
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--output", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == OUTPUT.read_text()
    assert str(REPO) not in out.read_text()
    assert str(tmp_path) not in out.read_text()


def test_every_setting_is_listed_with_its_prefix() -> None:
    text = OUTPUT.read_text()
    prefixes = {"gateway": "VRE_", "datalake": "VRE_DATALAKE_", "workflows": "VRE_WORKFLOWS_",
                "catalogue": "VRE_CATALOGUE_", "zenodo": "VRE_ZENODO_",
                "ivoa": "VRE_IVOA_"}  # fmt: skip
    for service, cls in settings_classes():
        names = env_names(cls)
        assert names, service
        for name in names:
            assert name.startswith(prefixes[service]), name
            assert f"| `{name}` |" in text, name
    # nested settings use "__", and secrets are marked
    assert "| `VRE_AUTH__ISSUERS` |" in text
    assert "| `VRE_DATALAKE_RUCIO__SERVICE_PASSWORD` | secret |" in text
    rows = [line for line in text.splitlines() if line.startswith("| `VRE_")]
    assert len(rows) == sum(len(env_names(cls)) for _, cls in settings_classes())


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(OUTPUT.read_text().replace("VRE_AUTH__ISSUERS", "VRE_AUTH__ISSUER", 1))
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--output", str(stale)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_sections_follow_the_models() -> None:
    for service, cls in settings_classes():
        found = sections(service, cls)
        assert found[0].title.startswith(service)
        for section in found[1:]:
            assert section.title.startswith("`VRE_")
            assert section.title.endswith("__…`")


def test_operations_guide_links_the_reference() -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    assert "configuration.md" in guide
