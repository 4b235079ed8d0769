"""docker-compose.yml: rendered by a compose implementation, validated against the Compose
specification, and checked for what the distributed mode needs on one host.

No container engine runs in CI, so `podman-compose --dry-run config` renders the file
(interpolation from deploy/compose.env.example, anchors, profiles) and the strict
`compose-spec` parser validates the result (unknown keys, types, enum values). The checks
after that are this deployment's own rules: health checks and start order, migrations as
one-shot services, one published port, no secret written in the file, and every VRE_…
variable a real setting of the service that receives it.
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

from tests.deploy.conftest import REPO, tool
from tests.deploy.support.dockerfiles import SERVICES, dockerfile
from tools.gen_config_reference import SETTINGS, env_names, settings_classes

COMPOSE = REPO / "docker-compose.yml"
EXAMPLE = REPO / "deploy" / "compose.env.example"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIALS_KEY|_KEY$")
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
ONLY_VARIABLE = re.compile(r"^\$\{[A-Z0-9_]+(?::?[-?][^}]*)?\}$")


def render(
    env_file: Path = EXAMPLE, *, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`podman-compose --dry-run config` with only the env file as input (no host variables)."""
    args = [str(tool("podman-compose")), "--dry-run", "--env-file", str(env_file)]
    for profile in profiles:
        args += ["--profile", profile]
    return subprocess.run(
        [*args, "-f", str(COMPOSE), "config"],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as written (anchors resolved by the YAML loader)."""
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """docker-compose.yml as the compose implementation renders it, every profile on."""
    result = render(profiles=("monitoring",))
    assert result.returncode == 0, result.stderr[-3000:]
    return yaml.safe_load(result.stdout)


def example_variables() -> dict[str, str]:
    values = {}
    for line in EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def test_renders_and_is_valid_compose_spec(tools_python: Path) -> None:
    for profiles in ((), ("monitoring",)):
        result = render(profiles=profiles)
        assert result.returncode == 0, result.stderr[-3000:]
        check = subprocess.run(
            [
                str(tools_python),
                "-c",
                "import sys; from compose_spec import PyCompose; "
                "c = PyCompose.from_yaml(sys.stdin.read()); c.validate(); "
                "print(len(c.service_names()))",
            ],
            input=result.stdout,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stderr[-3000:]
        expected = 19 if profiles else 17
        assert int(check.stdout) == expected, profiles


def test_required_variables_stop_the_render(raw: dict[str, Any], tmp_path: Path) -> None:
    required = sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text())))
    assert {"POSTGRES_PASSWORD", "VRE_IAM_ISSUER", "VRE_PUBLIC_URL"} <= set(required)
    for name in required:
        env_file = tmp_path / f"without-{name}.env"
        env_file.write_text(
            "".join(f"{k}={v}\n" for k, v in example_variables().items() if k != name)
        )
        result = render(env_file, profiles=("monitoring",))
        assert result.returncode != 0, f"rendered without {name}"
        assert name in result.stderr


def test_every_variable_is_documented_in_the_example() -> None:
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    documented = set(example_variables())
    assert used - documented == set(), "used in docker-compose.yml, missing from the example"
    assert documented - used == set(), "in the example, not used by docker-compose.yml"
    text = EXAMPLE.read_text()
    for name in documented:  # each variable has a comment in the block above it
        block = text.split(f"\n{name}=")[0].rsplit("\n\n", 1)[-1]
        assert "#" in block, f"{name} has no explanation"


def test_no_secret_is_written_in_the_file(raw: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{name}: use the mapping form"
        for key, raw_value in environment.items():
            value = str(raw_value)
            if SECRET_NAME.search(key):
                assert ONLY_VARIABLE.match(value), f"{name}.{key} must come from the env file"
            userinfo = re.match(r"^[a-z0-9+]+://([^@/]+)@", value)
            if userinfo and ":" in userinfo.group(1):
                password = userinfo.group(1).split(":", 1)[1]
                assert ONLY_VARIABLE.match(password), f"{name}.{key}: password inline"
    # the example holds placeholders only
    for key, value in example_variables().items():
        if SECRET_NAME.search(key):
            assert value == "change-me", key


def test_every_long_running_service_has_a_health_check(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        if one_shot(service):
            # a one-shot step is waited for by completion, never by health
            for other in services.values():
                condition = (other.get("depends_on") or {}).get(name)
                if condition is not None:
                    assert condition["condition"] == "service_completed_successfully", name
            continue
        assert not check.get("disable"), name
        assert check.get("test"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name


def test_start_order_waits_for_health(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = (
                "service_completed_successfully"
                if one_shot(services[dependency])
                else "service_healthy"
            )
            assert spec["condition"] == expected, f"{name} → {dependency}"
    gateway = services["gateway"]["depends_on"]
    for service in ("datalake", "workflows", "catalogue", "zenodo", "ivoa"):
        assert gateway[service]["condition"] == "service_healthy"
    assert gateway["migrate-gateway"]["condition"] == "service_completed_successfully"


def test_migrations_run_once_before_their_service(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    flags = {
        "gateway": ("VRE_MIGRATIONS", "verify"),
        "workflows": ("VRE_WORKFLOWS_RUN_MIGRATIONS", "false"),
        "catalogue": ("VRE_CATALOGUE_MIGRATIONS", "verify"),
        "zenodo": ("VRE_ZENODO_MIGRATIONS", "verify"),
        "ivoa": ("VRE_IVOA_MIGRATIONS", "verify"),
    }
    for service, (flag, value) in flags.items():
        migrate = services[f"migrate-{service}"]
        assert one_shot(migrate)
        assert migrate["command"] == ["vre-migrate", service]
        assert migrate["image"] == services[service]["image"]
        url_key = f"{flag.split('_MIGRATIONS')[0].replace('_RUN', '')}_DATABASE__URL"
        assert migrate["environment"][url_key] == services[service]["environment"][url_key]
        assert services[service]["environment"][flag] == value
        assert services[service]["depends_on"][f"migrate-{service}"]["condition"] == (
            "service_completed_successfully"
        )
        assert "postgresql+asyncpg://" in services[service]["environment"][url_key]


def test_only_the_gateway_and_grafana_publish_ports(rendered: dict[str, Any]) -> None:
    published = {name for name, s in rendered["services"].items() if s.get("ports")}
    assert published == {"gateway", "grafana"}
    assert rendered["networks"]["backend"]["internal"] is True
    for name in ("postgres", "rucio", "rucio-daemons", "webdav"):
        assert rendered["services"][name]["networks"] == ["backend"] or set(
            rendered["services"][name]["networks"]
        ) == {"backend"}, name


def test_images_are_built_from_the_project_dockerfiles(rendered: dict[str, Any]) -> None:
    built = {
        name: service["build"]
        for name, service in rendered["services"].items()
        if "build" in service
    }
    assert set(built) == {*SERVICES, "rucio-init", "webdav"}
    for name, build in built.items():
        path = REPO / build["dockerfile"]
        assert path.exists(), name
        assert Path(build["context"]).resolve() == REPO
        args = build.get("args") or []
        args = dict(a.split("=", 1) for a in args) if isinstance(args, list) else args
        assert "PYTHON_IMAGE" in args


def _service_settings() -> dict[str, type]:
    return dict(settings_classes())


@pytest.mark.parametrize("service", [s for s, _, _ in SETTINGS])
def test_vre_variables_are_real_settings(
    service: str, rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every VRE_… a container gets (image ENV + compose) is a setting that validates."""
    cls = _service_settings()[service]
    known = env_names(cls) | {"VRE_DATA"}  # VRE_DATA: the data folder of every service
    image_env = dockerfile(service).final.env()
    containers = [
        (name, s)
        for name, s in rendered["services"].items()
        if str(s.get("image", "")).split("/")[-1].startswith(f"vre-{service}:")
    ]
    assert containers
    for name, container in containers:
        environment = {**image_env, **{k: str(v) for k, v in container["environment"].items()}}
        names = {k for k in environment if k.startswith("VRE_")}
        assert names - known == set(), f"{name}: not settings of {cls.__name__}"
        for key in list(os.environ):
            if key.startswith("VRE_"):
                monkeypatch.delenv(key)
        for key in names:
            monkeypatch.setenv(key, environment[key])
        settings = cls()
        if name == service:  # the long-running container itself, not a one-shot step
            assert settings.auth.issuers == ["https://iam.example.org/"]
            assert settings.auth.audience == "vre"
            if service == "datalake":  # owns no tables
                assert settings.rucio.url == "http://rucio:8080"
            else:
                assert settings.database.url.startswith("postgresql+asyncpg://"), name


def test_gateway_routes_to_every_service(rendered: dict[str, Any]) -> None:
    environment = rendered["services"]["gateway"]["environment"]
    assert environment["VRE_MODE"] == "distributed"
    urls = json.loads(environment["VRE_SERVICE_URLS"])
    assert urls == {
        s: f"http://{s}:8000" for s in ("datalake", "workflows", "catalogue", "zenodo", "ivoa")
    }
    # and back: the services that ask the gateway about Science Projects
    services = rendered["services"]
    assert services["datalake"]["environment"]["VRE_DATALAKE_GATEWAY_URL"] == "http://gateway:8000"
    assert services["catalogue"]["environment"]["VRE_CATALOGUE_GATEWAY_URL"] == (
        "http://gateway:8000"
    )


def test_rucio_roles_and_storage(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    script = (REPO / "deploy" / "rucio" / "vre-rucio").read_text()
    for name in ("rucio-init", "rucio", "rucio-daemons"):
        for key in services[name]["environment"]:
            if key.startswith("RUCIO_"):
                assert key in script, f"{name}: vre-rucio does not read {key}"
    assert services["rucio-init"]["command"] == ["init"]
    assert services["rucio"]["command"] == ["server"]
    assert services["rucio-daemons"]["command"] == ["daemons"]
    # POSIX replicas are file:// paths: the same volume at the same place for both writers
    posix = {
        s: v
        for s in ("datalake", "rucio-daemons", "rucio-setup")
        for v in services[s]["volumes"]
        if "rse-posix" in str(v)
    }
    assert len(posix) == 3
    setup = services["rucio-setup"]["command"]
    assert setup[0] == "vre-provision-rucio"
    assert "VRE-POSIX=/data/posix" in setup
    assert any(a.startswith("VRE-WEBDAV=https://webdav:8443/") for a in setup)
    datalake = services["datalake"]["environment"]
    assert datalake["VRE_DATALAKE_STORAGE__DEFAULT_RSE"] == "VRE-POSIX"
    assert (
        datalake["VRE_DATALAKE_RUCIO__SERVICE_PASSWORD"]
        == services["rucio-init"]["environment"]["RUCIO_ADMIN_PASSWORD"]
    )


def test_prometheus_scrapes_every_service(rendered: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / "deploy" / "monitoring" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert targets == {f"{s}:9100" for s in SERVICES}  # the metrics port, not the API's
    for service in SERVICES:
        assert rendered["services"][service]["environment"]["METRICS_PORT"] == "9100"
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert all(
        job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"]
    )
    volumes = rendered["services"]["prometheus"]["volumes"]
    assert any("deploy/monitoring/prometheus.yml" in str(v) for v in volumes)
    assert any("deploy/monitoring/rules.yml" in str(v) for v in volumes)
