"""k8s/: every overlay rendered with `kubectl kustomize`, every object validated against the
Kubernetes schemas (kubernetes-validate, strict, pinned version), and the deployment's rules
checked: probes and limits, autoscaling only for stateless services, one Ingress (the
gateway), network policies, migrations as Jobs, secrets referenced and never embedded, every
VRE_… variable a real setting; and the Flux objects point at what exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO
from tests.deploy.support.dockerfiles import SERVICES, dockerfile
from tools.gen_config_reference import env_names, settings_classes

KUBERNETES_VERSION = "1.32.0"  # the oldest version the manifests must validate against
OVERLAYS = ("dev", "prod")
NAMESPACES = {"dev": "vre-dev", "prod": "vre"}
STATELESS = {"gateway", "datalake"}  # autoscaled; the others are single-replica on purpose
WITH_DATABASE = {"gateway", "workflows", "catalogue", "zenodo", "ivoa"}
CUSTOM_KINDS = {"ServiceMonitor"}  # no schema bundled: checked structurally below
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIALS_KEY")
VALIDATOR = Path(__file__).with_name("support") / "k8s_validate.py"
DASHBOARDS = REPO / "deploy" / "monitoring" / "grafana" / "dashboards"


def kustomize(kubectl: str, path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay's objects."""
    return {name: kustomize(kubectl, REPO / "k8s" / "overlays" / name) for name in OVERLAYS}


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_kubernetes_schemas(
    overlay: str, rendered: dict[str, list[dict[str, Any]]], tools_python: Path
) -> None:
    text = yaml.safe_dump_all(rendered[overlay])
    result = subprocess.run(
        [str(tools_python), str(VALIDATOR), KUBERNETES_VERSION],
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["problems"] == []
    assert {name.split("/")[0] for name in report["skipped"]} <= CUSTOM_KINDS
    assert report["validated"] == len(rendered[overlay]) - len(report["skipped"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_limits_and_a_locked_down_pod(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    assert {component(d) for d in deployments.values()} == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert main["startupProbe"]["httpGet"]["path"] == "/healthz", name
        # the gateway's /readyz aggregates every service and backend (see its manifest)
        expected = "/healthz" if component(deployment) == "gateway" else "/readyz"
        assert main["readinessProbe"]["httpGet"]["path"] == expected, name
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert main[probe]["httpGet"]["port"] == "http", name
        resources = main["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), f"{name} {kind}"
        assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["enableServiceLinks"] is False, f"{name}: VRE_…_PORT variables would leak in"
        assert pod["automountServiceAccountToken"] is False
        security = main["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        image = main["image"]
        assert ":" in image.rsplit("/", 1)[-1], name
        assert not image.endswith(":latest"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_and_disruption_budgets(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    objects = rendered[overlay]
    deployments = of_kind(objects, "Deployment")
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    pdbs = of_kind(objects, "PodDisruptionBudget")
    assert {component(h) for h in hpas.values()} == STATELESS
    assert {component(p) for p in pdbs.values()} == STATELESS
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert target["name"] in deployments
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        metric = hpa["spec"]["metrics"][0]["resource"]
        assert metric["name"] == "cpu"  # needs the cpu request set on the container
        assert "cpu" in container(deployments[target["name"]])["resources"]["requests"]
    for pdb in pdbs.values():
        labels = pdb["spec"]["selector"]["matchLabels"]
        matching = [
            d
            for d in deployments.values()
            if labels.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1
        hpa = next(
            h
            for h in hpas.values()
            if h["spec"]["scaleTargetRef"]["name"] == matching[0]["metadata"]["name"]
        )
        if overlay == "prod":  # a budget that allows no eviction would block node drains
            assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    for deployment in deployments.values():
        if component(deployment) not in STATELESS:
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_is_reachable_from_outside(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    objects = rendered[overlay]
    ingresses = of_kind(objects, "Ingress")
    assert list(ingresses) == ["vre-gateway"]
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingresses["vre-gateway"]["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"vre-gateway"}
    assert ingresses["vre-gateway"]["spec"]["tls"][0]["secretName"]
    services = of_kind(objects, "Service")
    assert all(s["spec"]["type"] == "ClusterIP" for s in services.values())

    policies = of_kind(objects, "NetworkPolicy")
    deny = policies["vre-default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny
    deployments = of_kind(objects, "Deployment")

    def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
        selector = policy["spec"]["podSelector"]
        if not labels.items() >= selector.get("matchLabels", {}).items():
            return False
        for expression in selector.get("matchExpressions", []):
            assert expression["operator"] == "In"
            if labels.get(expression["key"]) not in expression["values"]:
                return False
        return True

    for deployment in deployments.values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        rules = [
            rule
            for policy in policies.values()
            if selects(policy, labels)
            for rule in policy["spec"].get("ingress", [])
        ]
        open_to_all = [rule for rule in rules if "from" not in rule]
        if component(deployment) == "gateway":
            assert open_to_all, "the gateway must be reachable"
        else:
            assert rules, f"{component(deployment)} is unreachable even for the gateway"
            assert open_to_all == [], f"{component(deployment)} is open to everyone"
            for rule in rules:
                for peer in rule["from"]:
                    if "podSelector" in peer:
                        assert peer["podSelector"]["matchLabels"] == {
                            "app.kubernetes.io/part-of": "vre"
                        }
                        assert "namespaceSelector" not in peer
                    else:  # only Prometheus' namespace, in the monitoring component
                        assert peer["namespaceSelector"]["matchLabels"] == {
                            "kubernetes.io/metadata.name": "monitoring"
                        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_embedded(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    objects = rendered[overlay]
    assert of_kind(objects, "Secret") == {}
    operations = (REPO / "docs" / "operations.md").read_text()
    referenced: set[tuple[str, str]] = set()
    for obj in objects:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        for item in container(obj).get("env", []):
            assert "value" not in item or not SECRET_NAME.search(item["name"]), item["name"]
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                referenced.add((ref["name"], ref["key"]))
    assert referenced
    for name, key in referenced:  # the operator learns from the docs what to create
        assert f"`{name}`" in operations, name
        assert f"`{key}`" in operations, (name, key)
    for config in of_kind(objects, "ConfigMap").values():
        if config["metadata"]["name"] == "vre-grafana-dashboards":
            continue
        for key, value in config["data"].items():
            assert not SECRET_NAME.search(key), key
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"credentials in {key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_vre_variables_are_real_settings(
    overlay: str, rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered[overlay]
    configs = of_kind(objects, "ConfigMap")
    classes = dict(settings_classes())
    for deployment in of_kind(objects, "Deployment").values():
        service = component(deployment)
        cls = classes[service]
        main = container(deployment)
        environment = dict(dockerfile(service).final.env())
        for source in main.get("envFrom", []):
            environment.update(configs[source["configMapRef"]["name"]]["data"])
        for item in main.get("env", []):
            if "secretKeyRef" in item.get("valueFrom", {}):
                dummy = (
                    "postgresql+asyncpg://vre:x@db/x" if "DATABASE__URL" in item["name"] else "x"
                )
                environment[item["name"]] = dummy
        names = {k for k in environment if k.startswith("VRE_")}
        assert names - (env_names(cls) | {"VRE_DATA"}) == set(), service
        for key in list(os.environ):
            if key.startswith("VRE_"):
                monkeypatch.delenv(key)
        for key in names:
            monkeypatch.setenv(key, environment[key])
        settings = cls()
        assert settings.auth.issuers, service
        if service in WITH_DATABASE:
            assert settings.database.url.startswith("postgresql+asyncpg://")
        if service in ("datalake", "catalogue"):  # they ask the gateway about projects
            assert settings.gateway_url == "http://vre-gateway:8000"
        if service == "gateway":
            assert settings.mode == "distributed"
            assert set(settings.service_urls) == {
                "datalake",
                "workflows",
                "catalogue",
                "zenodo",
                "ivoa",
            }
            for name, url in settings.service_urls.items():
                assert url == f"http://vre-{name}:8000"  # the Service of that name, its port
                assert f"vre-{name}" in of_kind(objects, "Service")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_jobs_before_services_verify(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    objects = rendered[overlay]
    jobs = {component(j): j for j in of_kind(objects, "Job").values()}
    deployments = {component(d): d for d in of_kind(objects, "Deployment").values()}
    configs = of_kind(objects, "ConfigMap")
    assert set(jobs) == {f"migrate-{s}" for s in WITH_DATABASE}
    flags = {
        "gateway": ("VRE_MIGRATIONS", "verify"),
        "workflows": ("VRE_WORKFLOWS_RUN_MIGRATIONS", "false"),
        "catalogue": ("VRE_CATALOGUE_MIGRATIONS", "verify"),
        "zenodo": ("VRE_ZENODO_MIGRATIONS", "verify"),
        "ivoa": ("VRE_IVOA_MIGRATIONS", "verify"),
    }
    for service in WITH_DATABASE:
        job = jobs[f"migrate-{service}"]
        main = container(job)
        assert main["command"] == ["vre-migrate", service]
        assert main["image"] == container(deployments[service])["image"]
        assert job["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/force"] == "enabled"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert "limits" in main["resources"]
        job_db = [e for e in main["env"] if e["name"].endswith("DATABASE__URL")]
        service_db = [
            e for e in container(deployments[service])["env"] if e["name"].endswith("DATABASE__URL")
        ]
        assert job_db == service_db
        flag, value = flags[service]
        config = configs[container(deployments[service])["envFrom"][0]["configMapRef"]["name"]]
        assert config["data"][flag] == value


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespaces_and_images(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered[overlay]
    namespace = NAMESPACES[overlay]
    assert list(of_kind(objects, "Namespace")) == [namespace]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vre"
    images = {container(d)["image"] for d in of_kind(objects, "Deployment").values()}
    assert len({image.rsplit(":", 1)[1] for image in images}) == 1, "one release everywhere"


def test_prod_is_monitored(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["prod"]
    monitors = of_kind(objects, "ServiceMonitor")
    assert list(monitors) == ["vre"]
    monitor = monitors["vre"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s
        for s in of_kind(objects, "Service").values()
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert {component(s) for s in selected} == set(SERVICES)
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        for service in selected:
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    dashboards = of_kind(objects, "ConfigMap")["vre-grafana-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(dashboards["data"]) == {p.name for p in DASHBOARDS.glob("*.json")}
    for name, text in dashboards["data"].items():
        assert json.loads(text) == json.loads((DASHBOARDS / name).read_text())
    assert of_kind(rendered["dev"], "ServiceMonitor") == {}


def test_flux_follows_the_overlays() -> None:
    docs = [
        doc
        for path in sorted((REPO / "k8s" / "flux").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    sources = {d["metadata"]["name"]: d for d in docs if d["kind"] == "GitRepository"}
    kustomizations = [d for d in docs if d["kind"] == "Kustomization"]
    assert list(sources) == ["vre"]
    source = sources["vre"]
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert source["spec"]["url"].startswith("https://")
    assert source["spec"]["ref"]["branch"]
    assert re.fullmatch(r"\d+[smh]", source["spec"]["interval"])
    paths = set()
    for item in kustomizations:
        assert item["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        spec = item["spec"]
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "vre"}
        assert spec["prune"] is True
        assert spec["wait"] is True
        assert re.fullmatch(r"\d+[smh]", spec["interval"])
        overlay = REPO / spec["path"]
        assert (overlay / "kustomization.yaml").exists(), spec["path"]
        assert spec["targetNamespace"] == NAMESPACES[overlay.name]
        paths.add(overlay.name)
        for ignored in ("k8s", "deploy/monitoring"):  # what the overlays read stays in
            assert f"!/{ignored}/" in source["spec"]["ignore"]
    assert paths == set(OVERLAYS)
