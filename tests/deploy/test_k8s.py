"""k8s/: every profile, site and migrations folder rendered with `kubectl kustomize`, every
object validated against the Kubernetes schemas (kubernetes-validate, strict, pinned
version), and the rules an operator relies on checked — each of them a way a real
deployment broke before:

- probes for their purpose: liveness and startup on /healthz, readiness on /readyz (which
  answers for the pod's own ability to serve, never for a backend);
- the HorizontalPodAutoscaler owns the replica count (no `replicas` a GitOps reconcile would
  reset), and disruption budgets always allow a node drain;
- no state on an emptyDir (outboxes, workspaces), nothing site-specific in the base or the
  profiles, every image of a site pinned by digest, the same digests for its migrations;
- migrations before pods: a Flux Kustomization of their own that the applications depend on;
- secrets referenced, never embedded, and each one made by an ExternalSecret of the site;
- only the gateway reachable from outside, its metrics port not routed by the Ingress.
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
PROFILES = ("dev", "prod")
SITES = {"example": "prod", "example-dev": "dev"}  # site → the profile it builds on
NAMESPACES = {"dev": "vre-dev", "prod": "vre"}
STATELESS = {"gateway", "datalake"}  # autoscaled; the others are single-replica on purpose
WITH_DATABASE = {"gateway", "datalake", "workflows", "catalogue", "zenodo", "ivoa"}
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ExternalSecret"}  # checked structurally
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIALS_KEY")
DIGEST = re.compile(r"^[a-z0-9.\-]+(?::\d+)?/[a-z0-9/_.\-]+@sha256:[0-9a-f]{64}$")
VALIDATOR = Path(__file__).with_name("support") / "k8s_validate.py"
DASHBOARDS = REPO / "deploy" / "monitoring" / "grafana" / "dashboards"
K8S = REPO / "k8s"


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


def targets() -> dict[str, Path]:
    """Everything a cluster could be pointed at: profiles, sites, their migrations, secrets."""
    found = {f"overlays/{p}": K8S / "overlays" / p for p in PROFILES}
    found |= {f"overlays/{p}/migrations": K8S / "overlays" / p / "migrations" for p in PROFILES}
    for site in SITES:
        for part in ("", "/migrations", "/secrets"):
            found[f"sites/{site}{part}"] = K8S / "sites" / f"{site}{part}"
    return found


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every target's objects."""
    return {name: kustomize(kubectl, path) for name, path in targets().items()}


def apps(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The application renders (profiles and sites, not their migrations or secrets)."""
    return {
        name: objects
        for name, objects in rendered.items()
        if not name.endswith(("/migrations", "/secrets"))
    }


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def flux_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("sites/*/flux/*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


@pytest.mark.parametrize("target", sorted(targets()))
def test_objects_validate_against_kubernetes_schemas(
    target: str, rendered: dict[str, list[dict[str, Any]]], tools_python: Path
) -> None:
    text = yaml.safe_dump_all(rendered[target])
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
    assert report["validated"] == len(rendered[target]) - len(report["skipped"])


def test_every_deployment_has_probes_for_their_purpose_limits_and_a_locked_down_pod(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for target, objects in apps(rendered).items():
        deployments = of_kind(objects, "Deployment")
        assert {component(d) for d in deployments.values()} == set(SERVICES), target
        for name, deployment in deployments.items():
            pod = deployment["spec"]["template"]["spec"]
            main = container(deployment)
            where = f"{target} {name}"
            # alive / started: the process answers; ready: it can serve (its own database),
            # whatever the backends do (their health is in /readyz's details and metrics)
            assert main["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert main["startupProbe"]["httpGet"]["path"] == "/healthz", where
            assert main["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                assert main[probe]["httpGet"]["port"] == "http", where
            # a liveness probe slower to fail than readiness: a busy pod is taken out of the
            # Service before it is killed
            live, ready = main["livenessProbe"], main["readinessProbe"]
            assert (
                live["periodSeconds"] * live["failureThreshold"]
                > ready["periodSeconds"] * ready["failureThreshold"]
            ), where
            resources = main["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{where} {kind}"
            assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in main["ports"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] == 10001
            assert pod["enableServiceLinks"] is False, f"{where}: VRE_…_PORT variables leak in"
            assert pod["automountServiceAccountToken"] is False
            security = main["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            image = main["image"]
            assert "@sha256:" in image or ":" in image.rsplit("/", 1)[-1], where
            assert not image.endswith(":latest"), where


def test_autoscalers_own_the_replicas_and_drains_are_never_blocked(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for target, objects in apps(rendered).items():
        deployments = of_kind(objects, "Deployment")
        hpas = of_kind(objects, "HorizontalPodAutoscaler")
        pdbs = of_kind(objects, "PodDisruptionBudget")
        assert {component(h) for h in hpas.values()} == STATELESS, target
        assert {component(p) for p in pdbs.values()} == STATELESS, target
        scaled = {h["spec"]["scaleTargetRef"]["name"]: h for h in hpas.values()}
        for hpa in hpas.values():
            ref = hpa["spec"]["scaleTargetRef"]
            assert ref["kind"] == "Deployment"
            assert ref["name"] in deployments
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
            metric = hpa["spec"]["metrics"][0]["resource"]
            assert metric["name"] == "cpu"  # needs the cpu request set on the container
            assert "cpu" in container(deployments[ref["name"]])["resources"]["requests"]
        for name, deployment in deployments.items():
            if name in scaled:  # Flux would reset what the autoscaler chose at every sync
                assert "replicas" not in deployment["spec"], f"{target} {name}"
            else:
                assert deployment["spec"]["replicas"] == 1, f"{target} {name}"
                assert deployment["spec"]["strategy"]["type"] == "Recreate"
        for pdb in pdbs.values():
            labels = pdb["spec"]["selector"]["matchLabels"]
            matching = [
                d
                for d in deployments.values()
                if labels.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert len(matching) == 1
            hpa = scaled[matching[0]["metadata"]["name"]]
            spec = pdb["spec"]
            if "maxUnavailable" in spec:
                assert spec["maxUnavailable"] >= 1, target
            else:  # at the autoscaler's minimum, one pod must still be evictable
                assert spec["minAvailable"] < hpa["spec"]["minReplicas"], target


def test_no_state_on_an_emptydir(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Outboxes, workspaces and other state live on a PersistentVolumeClaim or in a database:
    a pod that is rescheduled or scaled down must not take pending work with it."""
    for target, objects in apps(rendered).items():
        configs = of_kind(objects, "ConfigMap")
        for name, deployment in of_kind(objects, "Deployment").items():
            pod = deployment["spec"]["template"]["spec"]
            main = container(deployment)
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            mounts = {m["mountPath"]: volumes[m["name"]] for m in main.get("volumeMounts", [])}
            environment: dict[str, str] = {}
            for source in main.get("envFrom", []):
                environment.update(configs[source["configMapRef"]["name"]]["data"])
            for key, value in environment.items():
                if not re.search(r"OUTBOX|DATA_DIR|WORKSPACE", key) or not value.startswith("/"):
                    continue
                mount = max((m for m in mounts if value.startswith(m)), key=len, default=None)
                assert mount is not None, f"{target} {name}: {key}={value} is not on a volume"
                assert "persistentVolumeClaim" in mounts[mount], (
                    f"{target} {name}: {key}={value} is on an emptyDir: lost with the pod"
                )


def test_only_the_gateway_is_reachable_from_outside_and_not_its_metrics(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for target, objects in apps(rendered).items():
        ingresses = of_kind(objects, "Ingress")
        assert list(ingresses) == ["vre-gateway"]
        routed = [
            path["backend"]["service"]
            for rule in ingresses["vre-gateway"]["spec"]["rules"]
            for path in rule["http"]["paths"]
        ]
        # only the API port: /metrics is served on the separate "metrics" port
        assert routed == [{"name": "vre-gateway", "port": {"name": "http"}}], target
        services = of_kind(objects, "Service")
        assert all(s["spec"]["type"] == "ClusterIP" for s in services.values())
        for name, deployment in of_kind(objects, "Deployment").items():
            ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
            assert ports.get("metrics") == 9100, f"{target} {name}"
        policies = of_kind(objects, "NetworkPolicy")
        deny = policies["vre-default-deny-ingress"]["spec"]
        assert deny["podSelector"] == {}
        assert deny["policyTypes"] == ["Ingress"]
        assert "ingress" not in deny
        for deployment in of_kind(objects, "Deployment").values():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            rules = [
                rule
                for policy in policies.values()
                if labels.items() >= policy["spec"]["podSelector"].get("matchLabels", {}).items()
                for rule in policy["spec"].get("ingress", [])
            ]
            open_to_all = [rule for rule in rules if "from" not in rule]
            for rule in open_to_all:  # what anyone reaches: the API port, never metrics
                assert [p["port"] for p in rule["ports"]] == ["http"], component(deployment)
            if component(deployment) == "gateway":
                assert open_to_all, "the gateway must be reachable"
            else:
                assert rules, f"{component(deployment)} is unreachable even for the gateway"
                assert open_to_all == [], f"{component(deployment)} is open to everyone"
    for site in SITES:
        ingress = of_kind(rendered[f"sites/{site}"], "Ingress")["vre-gateway"]
        host = ingress["spec"]["rules"][0]["host"]
        assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "vre-tls"}]
        gateway = container(of_kind(rendered[f"sites/{site}"], "Deployment")["vre-gateway"])
        trusted = {e["name"]: e.get("value") for e in gateway["env"]}["FORWARDED_ALLOW_IPS"]
        assert trusted, "no forwarded addresses trusted: all callers share one bucket"
        assert trusted != "*", "forwarded addresses trusted from anyone"


def test_secrets_are_made_by_the_sites_external_secrets_and_documented(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    reference = (REPO / "docs" / "secrets.md").read_text()
    for target, objects in rendered.items():
        assert of_kind(objects, "Secret") == {}, target
        for config in of_kind(objects, "ConfigMap").values():
            if config["metadata"]["name"] == "vre-grafana-dashboards":
                continue
            for key, value in config["data"].items():
                assert not SECRET_NAME.search(key) or key.endswith(("_FILE", "TOKEN_URL")), key
                assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"credentials in {key}"
    for site in SITES:
        made: set[tuple[str, str]] = set()
        for secret in of_kind(rendered[f"sites/{site}/secrets"], "ExternalSecret").values():
            assert secret["apiVersion"] == "external-secrets.io/v1"
            assert secret["spec"]["secretStoreRef"]["kind"] == "ClusterSecretStore"
            target = secret["spec"]["target"]["name"]
            made |= {(target, item["secretKey"]) for item in secret["spec"]["data"]}
        referenced: set[tuple[str, str]] = set()
        for part in ("", "/migrations"):
            for obj in rendered[f"sites/{site}{part}"]:
                if obj["kind"] not in ("Deployment", "Job"):
                    continue
                for item in container(obj).get("env", []):
                    assert "value" not in item or not SECRET_NAME.search(item["name"])
                    ref = item.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        referenced.add((ref["name"], ref["key"]))
        assert referenced
        assert referenced <= made, referenced - made
        for name, key in made:  # the operator learns how each is made and rotated
            assert f"`{name}`" in reference, name
            assert f"`{key}`" in reference, (name, key)


def test_nothing_site_specific_outside_the_sites(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for target, objects in rendered.items():
        if target.startswith("overlays/"):
            assert "example.org" not in yaml.safe_dump_all(objects), target
    for site in SITES:  # the site sets what the settings need (next test) and its host
        text = yaml.safe_dump_all(rendered[f"sites/{site}"])
        assert "example.org" in text  # the template's values, to be replaced by a real site


@pytest.mark.parametrize("site", sorted(SITES))
def test_vre_variables_are_real_settings(
    site: str, rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered[f"sites/{site}"]
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
            elif "value" in item:
                environment[item["name"]] = item["value"]
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
            assert settings.readiness_details == "signed-in"
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


def test_migrations_are_jobs_of_their_own_kustomization(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for target, objects in apps(rendered).items():
        assert of_kind(objects, "Job") == {}, f"{target}: Jobs belong to the migrations"
    flags = {
        "gateway": ("VRE_MIGRATIONS", "verify"),
        "datalake": ("VRE_DATALAKE_MIGRATIONS", "verify"),
        "workflows": ("VRE_WORKFLOWS_RUN_MIGRATIONS", "false"),
        "catalogue": ("VRE_CATALOGUE_MIGRATIONS", "verify"),
        "zenodo": ("VRE_ZENODO_MIGRATIONS", "verify"),
        "ivoa": ("VRE_IVOA_MIGRATIONS", "verify"),
    }
    for site in SITES:
        objects = rendered[f"sites/{site}"]
        jobs = {
            component(j): j for j in of_kind(rendered[f"sites/{site}/migrations"], "Job").values()
        }
        deployments = {component(d): d for d in of_kind(objects, "Deployment").values()}
        configs = of_kind(objects, "ConfigMap")
        assert set(jobs) == {f"migrate-{s}" for s in WITH_DATABASE}
        for service in WITH_DATABASE:
            job = jobs[f"migrate-{service}"]
            main = container(job)
            assert main["command"] == ["vre-migrate", service]
            # the same release as the pods that will verify the schema
            assert main["image"] == container(deployments[service])["image"]
            assert job["metadata"]["namespace"] == deployments[service]["metadata"]["namespace"]
            assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
            assert "limits" in main["resources"]
            job_db = [e for e in main["env"] if e["name"].endswith("DATABASE__URL")]
            service_db = [
                e
                for e in container(deployments[service])["env"]
                if e["name"].endswith("DATABASE__URL")
            ]
            assert job_db == service_db
            flag, value = flags[service]
            config = configs[container(deployments[service])["envFrom"][0]["configMapRef"]["name"]]
            assert config["data"][flag] == value


def test_sites_run_images_pinned_by_digest(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for site, profile in SITES.items():
        images: set[str] = set()
        for part in ("", "/migrations"):
            for obj in rendered[f"sites/{site}{part}"]:
                if obj["kind"] in ("Deployment", "Job"):
                    images.add(container(obj)["image"])
        assert images
        for image in images:
            assert DIGEST.match(image), f"{site}: {image} is not pinned by digest"
        for obj in rendered[f"sites/{site}"]:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == NAMESPACES[profile], obj["metadata"]
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vre"


def test_flux_applies_secrets_then_migrations_then_the_applications() -> None:
    docs = flux_documents()
    sources = {d["metadata"]["name"]: d for d in docs if d["kind"] == "GitRepository"}
    kustomizations = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Kustomization"}
    assert list(sources) == ["vre"]
    source = sources["vre"]
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert source["spec"]["url"].startswith("https://")
    for ignored in ("k8s", "deploy/monitoring"):  # what the sites read stays in
        assert f"!/{ignored}/" in source["spec"]["ignore"]
    paths: dict[str, str] = {}
    for name, item in kustomizations.items():
        assert item["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        spec = item["spec"]
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "vre"}
        assert spec["prune"] is True
        assert spec["wait"] is True  # a dependent waits for this one's objects to be ready
        assert (REPO / spec["path"] / "kustomization.yaml").exists(), spec["path"]
        paths[spec["path"].removeprefix("./")] = name
    for site, profile in SITES.items():
        base = f"k8s/sites/{site}"
        apps_ks = kustomizations[paths[base]]
        migrations = kustomizations[paths[f"{base}/migrations"]]
        secrets = kustomizations[paths[f"{base}/secrets"]]
        assert apps_ks["spec"]["dependsOn"] == [{"name": migrations["metadata"]["name"]}]
        assert migrations["spec"]["dependsOn"] == [{"name": secrets["metadata"]["name"]}]
        assert migrations["spec"]["force"] is True  # Jobs are immutable: replaced per release
        for item in (apps_ks, migrations, secrets):
            assert item["spec"]["targetNamespace"] == NAMESPACES[profile]


def test_the_development_site_follows_main_by_digest_through_image_policies() -> None:
    docs = flux_documents()
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ImagePolicy"}
    repositories = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ImageRepository"}
    automations = [d for d in docs if d["kind"] == "ImageUpdateAutomation"]
    images_file = K8S / "sites" / "example-dev" / "images" / "kustomization.yaml"
    component_doc = yaml.safe_load(images_file.read_text())
    text = images_file.read_text()
    assert {f"vre-{s}" for s in SERVICES} == {i["name"] for i in component_doc["images"]}
    for image in component_doc["images"]:
        name = image["name"]
        policy = policies[name]
        assert policy["spec"]["imageRepositoryRef"]["name"] in repositories
        assert policy["spec"]["digestReflectionPolicy"] == "Always"
        assert repositories[name]["spec"]["image"] == image["newName"]
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
        assert "newTag" not in image  # a digest, never a moving tag
        assert f'{{"$imagepolicy": "flux-system:{name}:digest"}}' in text
    assert len(automations) == 1
    update = automations[0]["spec"]["update"]
    assert update == {"path": "./k8s/sites/example-dev/images", "strategy": "Setters"}


def test_prod_is_monitored_and_alerted(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["overlays/prod"]
    monitors = of_kind(objects, "ServiceMonitor")
    assert list(monitors) == ["vre"]
    monitor = monitors["vre"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    # kube-prometheus-stack's default selector: the Helm release label
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s
        for s in of_kind(objects, "Service").values()
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert {component(s) for s in selected} == set(SERVICES)
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] == "metrics"
        for service in selected:
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    rules = of_kind(objects, "PrometheusRule")
    assert list(rules) == ["vre"]
    assert rules["vre"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    plain = yaml.safe_load((REPO / "deploy" / "monitoring" / "rules.yml").read_text())
    assert rules["vre"]["spec"] == plain, "the PrometheusRule and Compose's rules differ"
    dashboards = of_kind(objects, "ConfigMap")["vre-grafana-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(dashboards["data"]) == {p.name for p in DASHBOARDS.glob("*.json")}
    for name, text in dashboards["data"].items():
        assert json.loads(text) == json.loads((DASHBOARDS / name).read_text())
    assert of_kind(rendered["overlays/dev"], "ServiceMonitor") == {}
