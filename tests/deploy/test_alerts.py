"""The alerts (deploy/monitoring/rules.yml): valid, unit-tested, and about real series.

- ``promtool check rules`` accepts the file and ``promtool test rules`` runs its unit tests
  (rules.test.yml: each alert fires on the failure it is for and stays silent otherwise);
  promtool comes from Debian's ``prometheus`` package (`make test` installs it).
- Every metric and label an alert or its unit test uses is exported by the services (the
  same scrape of every app as the dashboards' test), so an alert cannot watch a series
  that does not exist.
- The PrometheusRule for Kubernetes is generated from the same file and equal to it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO
from tests.deploy.test_dashboards import exported, metric_names, parse_promql
from tools.gen_prometheus_rule import render

MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "rules.yml"
UNIT_TESTS = MONITORING / "rules.test.yml"
WANTED = {  # the failures the operators' issue names, each with its alert
    "VREBackendDown",
    "VREHighServerErrorRatio",
    "VRETokensRejected",
    "VRETokenKeysUnavailable",
    "VREJobQueueGrowing",
    "VREOutboxBacklog",
    "VREDatabasePoolExhausted",
}
__all__ = ["exported"]  # the module-scoped fixture, shared with the dashboards' test


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `make system-deps` installs Debian's prometheus")
    return path


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_every_alert_has_a_unit_test_and_they_pass(promtool: str) -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert {r["alert"] for r in rules()} == tested
    assert tested >= WANTED
    result = subprocess.run(
        [promtool, "test", "rules", UNIT_TESTS.name],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.fixture(scope="module")
def families(
    exported: dict[str, tuple[str, set[str]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[str, set[str]]]:
    """What the apps export, plus the series that only get samples once something runs: a
    pooled database in use, a background job, an outbox pass (made here for real)."""
    import asyncio

    from prometheus_client import REGISTRY

    from vre_common.db import Database
    from vre_common.jobs import JobSupervisor
    from vre_common.provenance.outbox import FileOutbox
    from vre_common.provenance.relay import OutboxRelay
    from vre_common.settings import DatabaseSettings

    async def exercise() -> None:
        folder = tmp_path_factory.mktemp("metrics")
        database = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{folder}/pool.db"))
        async with database.transaction():
            jobs = JobSupervisor(1, service="alerts-test")
            jobs.start("one", lambda: asyncio.sleep(0))
            await jobs.shutdown()
            relay = OutboxRelay(FileOutbox(folder / "outbox.sqlite"), sink=None, name="test")  # type: ignore[arg-type]
            await relay.export_backlog()
            scraped = list(REGISTRY.collect())
        await database.dispose()
        for family in scraped:
            kind, labels = found.get(family.name, (family.type, set()))
            for sample in family.samples:
                labels |= set(sample.labels)
            found[family.name] = (kind, labels)

    found = {name: (kind, set(labels)) for name, (kind, labels) in exported.items()}
    asyncio.run(exercise())
    return found


def test_alerts_watch_series_the_services_export(
    families: dict[str, tuple[str, set[str]]],
) -> None:
    exported = families
    names = metric_names(exported)
    for rule in rules():
        metrics, used = parse_promql(rule["expr"])
        assert metrics, rule["alert"]
        assert metrics <= set(names), f"{rule['alert']}: {sorted(metrics - set(names))}"
        for metric, labels in used:
            allowed = exported[names[metric]][1]
            assert labels <= allowed, f"{rule['alert']}: {metric} has no {labels - allowed}"
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
    for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for series in test["input_series"]:
            match = re.fullmatch(r"(\w+)\{(.*)\}", series["series"])
            assert match, series
            name = match.group(1)
            assert name in names, name
            labels = set(re.findall(r"(\w+)=", match.group(2))) - {"instance"}
            assert labels <= exported[names[name]][1], (name, labels)


def test_the_prometheusrule_is_generated_from_the_rules() -> None:
    assert (MONITORING / "prometheusrule.yaml").read_text() == render(), (
        "run `make docs` after editing deploy/monitoring/rules.yml"
    )
