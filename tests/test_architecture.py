"""docs/architecture.md: its pictures are the code's structure today (tools/gen_architecture.py)."""

from __future__ import annotations

from pathlib import Path

from tools.gen_architecture import BEGIN, DOCUMENT, END, graphs, render, updated

REPO = Path(__file__).resolve().parents[1]


def test_the_map_matches_the_code() -> None:
    text = DOCUMENT.read_text()
    assert updated(text) == text, "docs/architecture.md is out of date: run `make docs`"
    assert text.count(BEGIN) == text.count(END) == 1


def test_the_map_sees_the_layering() -> None:
    packages, layers = graphs()
    # the gateway sits above the services, which sit above vre_common and never the reverse
    services = {"vre_datalake", "vre_workflows", "vre_catalogue", "vre_zenodo", "vre_ivoa"}
    assert services <= packages["vre_gateway"]
    assert all("vre_gateway" not in packages[s] for s in services)
    assert packages["vre_common"] <= {"vre_rucio_local"} or not packages["vre_common"]
    for service in services:
        assert "vre_common" in packages[service]
        assert {"services"} <= layers[service]["handlers"], service
    assert "mermaid" in render()


def test_readme_points_to_the_map() -> None:
    assert "docs/architecture.md" in (REPO / "README.md").read_text()
