"""The notebooks in examples/ run headless (nbclient, a real ipykernel) against the real
embedded VRE, and say what they should: the output cells are checked, not only "no error"."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.client.conftest import LiveVre

pytestmark = [pytest.mark.rucio, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _texts(notebook: Any) -> list[str]:
    """Each code cell's printed and displayed text, in order."""
    texts = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.get("data", {}).get("text/plain", ""))
        texts.append("".join(parts))
    return texts


def _images(notebook: Any) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def test_every_example_notebook_is_checked() -> None:
    assert sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.ipynb")) == [
        "dilepton/dilepton.ipynb"
    ]


def test_dilepton_notebook(
    as_alice: Path, live_vre: LiveVre, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    slug = f"nb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VRE_EXAMPLE_PROJECT", slug)
    monkeypatch.setenv("ZENODO_TOKEN", live_vre.zenodo_token("alice"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    path = EXAMPLES / "dilepton" / "dilepton.ipynb"
    notebook = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        "examples are committed without outputs"
    )
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()

    texts = _texts(notebook)
    everything = "\n".join(texts)
    assert "signed in as alice" in texts[0]
    assert f"project {slug}: uploaded proj.{slug}:inputs/events.csv" in everything
    assert "4000 events; columns: pt1, eta1, phi1, pt2, eta2, phi2" in everything
    first_look = re.search(r"median mass ([\d.]+) GeV", everything)
    assert first_look, everything
    assert 85 < float(first_look.group(1)) < 95
    assert "reana.yaml valid: True" in everything
    assert "run finished" in everything
    assert "resonance at" in everything  # fit.py's own log line, from the run's logs
    fitted = re.search(r"fitted mass ([\d.]+) GeV, width ([\d.]+) GeV", everything)
    assert fitted, everything
    assert 89 < float(fitted.group(1)) < 93  # the synthetic resonance: 91.2 GeV
    assert 1 < float(fitted.group(2)) < 5
    for output in ("results/fit.ecsv", "results/histogram.csv", "results/mass.csv"):
        assert re.search(rf"{re.escape(output)}\s+proj\.{slug}:", everything), output
    doi = re.search(r"DOI: (10\.\S+)", everything)
    assert doi, everything
    provenance = texts[-1]
    assert f"provenance of doi:{doi.group(1).lower()}" in provenance
    assert "--used-->" in provenance
    assert "inputs/events.csv" in provenance
    assert _images(notebook) == 2  # the input histogram and the output's
