"""The Grafana dashboards query only what the services export.

Each app is built in-process (the gateway, and each service's ``create_app`` with a test
validator), called once with a token and once without, and its ``/metrics`` read; every
metric name in every PromQL expression of every dashboard must be among the exported
families (histograms as ``_bucket``/``_sum``/``_count``, counters as ``_total``), and every
label a panel filters or groups by must be a label of that metric.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import REPO
from vre_common.testing import TestIssuer

DASHBOARDS = sorted((REPO / "deploy" / "monitoring" / "grafana" / "dashboards").glob("*.json"))
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
}
# PromQL words that look like identifiers but are not metrics
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip
WANTED = {  # what the issue asks the dashboards to show
    "vre_http_requests_total",
    "vre_http_request_duration_seconds_bucket",
    "vre_backend_request_duration_seconds_bucket",
    "vre_backend_request_duration_seconds_count",
    "vre_token_validations_total",
    "vre_transfer_bytes_total",
    "vre_workflow_runs_total",
}


def _apps(issuer: TestIssuer, tmp_path: Path) -> dict[str, Callable[[], FastAPI]]:
    from vre_catalogue.config import CatalogueSettings
    from vre_catalogue.main import create_app as catalogue_app
    from vre_datalake.config import DatalakeSettings
    from vre_datalake.main import create_app as datalake_app
    from vre_gateway.config import GatewaySettings
    from vre_gateway.main import create_app as gateway_app
    from vre_workflows.config import WorkflowsSettings
    from vre_workflows.main import create_app as workflows_app
    from vre_zenodo.config import ZenodoSettings
    from vre_zenodo.main import create_app as zenodo_app

    auth = issuer.auth_settings()
    return {
        "gateway": lambda: gateway_app(
            GatewaySettings(mode="distributed", auth=auth, data=tmp_path / "gateway"),
            validator=issuer.validator(),
        ),
        "datalake": lambda: datalake_app(DatalakeSettings(auth=auth), validator=issuer.validator()),
        "workflows": lambda: workflows_app(
            WorkflowsSettings(auth=auth, data_dir=tmp_path / "workflows"),
            validator=issuer.validator(),
        ),
        "catalogue": lambda: catalogue_app(
            CatalogueSettings(auth=auth), validator=issuer.validator()
        ),
        "zenodo": lambda: zenodo_app(
            ZenodoSettings(auth=auth, data_dir=tmp_path / "zenodo"), validator=issuer.validator()
        ),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, set[str]]]:
    """Metric family name → (type, label names), from every app's /metrics."""
    issuer = TestIssuer()
    families: dict[str, tuple[str, set[str]]] = {}
    seen_services: set[str] = set()

    async def scrape(app: FastAPI) -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            assert (await client.get("/healthz")).status_code == 200
            # a rejected and an accepted token: token validations get samples
            await client.get("/me", headers={"Authorization": "Bearer not-a-jwt"})
            await client.get("/me", headers=issuer.headers("alice"))
            response = await client.get("/metrics")
        assert response.status_code == 200
        return response.text

    import asyncio

    for _service, build in _apps(issuer, tmp_path_factory.mktemp("apps")).items():
        text = asyncio.run(scrape(build()))
        for family in text_string_to_metric_families(text):
            labels = families.get(family.name, (family.type, set()))[1]
            for sample in family.samples:
                labels |= set(sample.labels)
                if family.name == "vre_http_requests" and "service" in sample.labels:
                    seen_services.add(sample.labels["service"])
            families[family.name] = (family.type, labels)
    assert seen_services >= {"gateway", "datalake", "workflows", "catalogue", "zenodo"}
    # label names of metrics without samples yet come from their definitions
    for collector in list(REGISTRY._collector_to_names):
        names = getattr(collector, "_labelnames", None)
        name = getattr(collector, "_name", None)
        if names and name in families:
            families[name][1].update(names)
    return families


def metric_names(families: dict[str, tuple[str, set[str]]]) -> dict[str, str]:
    """Every series name a query may use → its family."""
    names = {}
    for family, (kind, _) in families.items():
        for suffix in SUFFIXES.get(kind, ("",)):
            names[family + suffix] = family
    return names


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, rows' nested panels included."""
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                found.append((panel["title"], target["expr"]))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            found.append((f"variable {variable['name']}", variable["definition"]))
    return found


def parse_promql(expr: str) -> tuple[set[str], list[tuple[str, set[str]]]]:
    """Metric names in ``expr``, and (metric, labels used) for each selector and grouping."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors, $__rate_interval
    selectors = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", text):
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(2)))
        selectors.append((match.group(1), labels))
    groupings = [
        set(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", m.group(1)))
        for m in re.finditer(r"\b(?:by|without)\s*\(([^)]*)\)", text)
    ]
    bare = re.sub(r"\{[^}]*\}", "", text)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)", r"\1", bare)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", bare):
        word, call = match.group(1), match.group(2)
        if call or word in KEYWORDS or re.fullmatch(r"[0-9eE.]+", word):
            continue
        names.add(word)
    used = [(name, labels) for name, labels in selectors]
    for labels in groupings:  # a grouping applies to the metrics of its expression
        used += [(name, labels - {"le"}) for name in names]
    return names, used


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem
    assert dashboard["title"].startswith("VRE")
    assert "vre" in dashboard["tags"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert panel.get("description"), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    assert len(ids) == len(set(ids))


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(DASHBOARDS) >= 3
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_queried_metric_is_exported(
    path: Path, exported: dict[str, tuple[str, set[str]]]
) -> None:
    names = metric_names(exported)
    dashboard = json.loads(path.read_text())
    for title, expr in expressions(dashboard):
        metrics, used = parse_promql(expr)
        assert metrics, f"{title}: no metric found in {expr}"
        unknown = metrics - set(names)
        assert not unknown, f"{title}: {sorted(unknown)} are not exported"
        for metric, labels in used:
            family = names[metric]
            allowed = exported[family][1] | ({"le"} if metric.endswith("_bucket") else set())
            assert labels <= allowed, f"{title}: {metric} has no label {sorted(labels - allowed)}"


def test_dashboards_cover_what_operators_need(exported: dict[str, tuple[str, set[str]]]) -> None:
    queried: set[str] = set()
    grouped: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for _, expr in expressions(json.loads(path.read_text())):
            metrics, used = parse_promql(expr)
            queried |= metrics
            for metric, labels in used:
                grouped.setdefault(metric, set()).update(labels)
    assert queried >= WANTED
    assert {"service", "route", "status"} <= grouped["vre_http_requests_total"]
    assert {"backend", "outcome", "operation"} <= grouped[
        "vre_backend_request_duration_seconds_count"
    ]
    assert {"reason", "outcome"} <= grouped["vre_token_validations_total"]
    assert "status" in grouped["vre_workflow_runs_total"]
    assert "direction" in grouped["vre_transfer_bytes_total"]


def test_parser_finds_names_and_labels() -> None:
    names, used = parse_promql(
        'histogram_quantile(0.95, sum by (backend, le) (rate(x_bucket{backend=~"$b", a!="1"}'
        "[$__rate_interval]))) / on(backend) sum(y_total offset 5m)"
    )
    assert names == {"x_bucket", "y_total"}
    assert ("x_bucket", {"backend", "a"}) in used
    assert ("y_total", {"backend"}) in used
