"""The distributed mode without containers: each service its own uvicorn process.

Used by ``tests/test_distributed.py``. Every process is configured only through environment
variables, as the images are (``docker-compose.yml``, ``k8s/``); its output goes to a log file
whose tail is shown when something fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vre_common.postgres import PostgresServer
from vre_common.testing import free_port
from vre_rucio_local import LocalRucio

REPO = Path(__file__).resolve().parents[2]
MIGRATE = REPO / "deploy" / "bin" / "vre-migrate"


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ``VRE_…`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRE_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def postgres_databases(server: PostgresServer, *services: str) -> Iterator[dict[str, str]]:
    """A fresh, uniquely named database per service on ``server``; dropped at the end.

    Yields ``{service: asyncpg URL}`` (the server's Unix socket: every process here reaches it).
    """
    run = uuid.uuid4().hex[:10]
    names = {service: f"vre_dist_{service}_{run}" for service in services}
    created: list[str] = []
    try:
        for name in names.values():
            created.append(server.create_database(name))
        yield {service: server.url(name) for service, name in names.items()}
    finally:
        if server.is_running:
            for name in created:
                server.drop_database(name)


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def migrate(services: Mapping[str, Mapping[str, str]], logs: Path, timeout: float = 60) -> None:
    """Run ``deploy/bin/vre-migrate SERVICE`` for each service at once (one-shot steps, as the
    compose file's migrate-* services); raise with the log of any that failed."""
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for service, env in services.items():
        log = logs / f"migrate-{service}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(MIGRATE), service],
                env=dict(env),
                cwd=logs,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running[service] = (process, log)
    failures = []
    for service, (process, log) in running.items():
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = -1
        if code != 0:
            failures.append(f"vre-migrate {service} exited with {code}:\n{tail(log)}")
    if failures:
        raise RuntimeError("\n\n".join(failures))


@dataclass
class ServiceProcess:
    """``python -m uvicorn --factory vre_<name>.main:create_app`` on a loopback port."""

    name: str
    port: int
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> ServiceProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "uvicorn", "--factory", f"vre_{self.name}.main:create_app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--timeout-graceful-shutdown", "3",
        ]  # fmt: skip
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: steps it runs go with it
            )
        return self

    def wait_ready(self, deadline: float) -> None:
        """Until ``GET /readyz`` answers 200; raise with the log tail if it exits or times out."""
        assert self.process is not None
        last = "no answer"
        with httpx.Client(timeout=3.0) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode} during start; "
                        f"its log:\n{tail(self.log_path)}"
                    )
                try:
                    answer = http.get(self.url + "/readyz")
                    if answer.status_code == 200:
                        return
                    last = f"{answer.status_code} {answer.text[:500]}"
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}"
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} was not ready in time ({last}); its log:\n"
                        f"{tail(self.log_path)}"
                    )
                time.sleep(0.1)

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM to its process group, then SIGKILL after ``grace`` seconds."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@dataclass
class Cluster:
    """The running processes; ``report()`` is what a failing test prints."""

    gateway: ServiceProcess
    services: dict[str, ServiceProcess]

    @property
    def processes(self) -> list[ServiceProcess]:
        return [*self.services.values(), self.gateway]

    def report(self, lines: int = 40) -> str:
        parts = []
        for proc in self.processes:
            state = "running" if proc.process and proc.process.poll() is None else "exited"
            header = f"----- {proc.name} ({proc.url}, {state}) {proc.log_path}"
            parts.append(f"{header}\n{tail(proc.log_path, lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        # The gateway first (no new requests), then the services.
        for proc in reversed(self.processes):
            proc.stop()


SERVICE_NAMES = ("datalake", "workflows", "catalogue", "zenodo")


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def service_environments(
    root: Path,
    ports: Mapping[str, int],
    issuer: str,
    rucio: LocalRucio,
    databases: Mapping[str, str],
    *,
    provisioner_token: str | None = None,
    steps_on_host: bool = False,
) -> dict[str, dict[str, str]]:
    """The ``VRE_…`` variables of each service and of the gateway, as the images get them:
    tokens of ``issuer`` (audience ``vre``), Rucio's service account, one database each, the
    services reaching each other through the gateway. Zenodo points nowhere (no network).

    ``steps_on_host``: workflow steps run on the host (no container image needed) — which the
    workflows service allows only without secrets, so it then gets no gateway URL (no
    project runs, no provenance) and no REANA credentials key.
    """

    def auth(prefix: str) -> dict[str, str]:
        return {f"{prefix}AUTH__ISSUERS": json.dumps([issuer]), f"{prefix}AUTH__AUDIENCE": "vre"}

    gateway = f"http://127.0.0.1:{ports['gateway']}"
    nowhere = f"http://127.0.0.1:{free_port()}"
    envs: dict[str, dict[str, str]] = {
        "datalake": {
            **auth("VRE_DATALAKE_"),
            "VRE_DATALAKE_RUCIO__URL": rucio.url,
            "VRE_DATALAKE_RUCIO__SERVICE_ACCOUNT": rucio.admin_account,
            "VRE_DATALAKE_RUCIO__SERVICE_USERNAME": rucio.admin_username,
            "VRE_DATALAKE_RUCIO__SERVICE_PASSWORD": rucio.admin_password,
            "VRE_DATALAKE_STORAGE__DEFAULT_RSE": rucio.rse_names[0],
            "VRE_DATALAKE_GATEWAY_URL": gateway,
            "VRE_DATALAKE_PROVENANCE__OUTBOX_PATH": str(root / "datalake" / "outbox.sqlite"),
        },
        "workflows": {
            **auth("VRE_WORKFLOWS_"),
            "VRE_WORKFLOWS_DATABASE__URL": databases["workflows"],
            "VRE_WORKFLOWS_RUN_MIGRATIONS": "false",
            "VRE_WORKFLOWS_DATA_DIR": str(root / "workflows" / "data"),
            "VRE_WORKFLOWS_DATALAKE__URL": f"{gateway}/datalake",
            "VRE_WORKFLOWS_GATEWAY_URL": gateway,
            "VRE_WORKFLOWS_REANA__CREDENTIALS_KEY": _fernet_key(),
        },
        "catalogue": {
            **auth("VRE_CATALOGUE_"),
            "VRE_CATALOGUE_DATABASE__URL": databases["catalogue"],
            "VRE_CATALOGUE_MIGRATIONS": "verify",
            "VRE_CATALOGUE_GATEWAY_URL": gateway,
            "VRE_CATALOGUE_ZENODO__URL": nowhere,
        },
        "zenodo": {
            **auth("VRE_ZENODO_"),
            "VRE_ZENODO_DATABASE__URL": databases["zenodo"],
            "VRE_ZENODO_MIGRATIONS": "verify",
            "VRE_ZENODO_DATA_DIR": str(root / "zenodo" / "data"),
            "VRE_ZENODO_CREDENTIALS_KEY": _fernet_key(),
            "VRE_ZENODO_ZENODO__URL": nowhere,
            "VRE_ZENODO_DATALAKE__URL": f"{gateway}/datalake",
            "VRE_ZENODO_WORKFLOWS__URL": f"{gateway}/workflows",
            "VRE_ZENODO_CATALOGUE__URL": f"{gateway}/catalogue",
            "VRE_ZENODO_GATEWAY_URL": gateway,
        },
        "gateway": {
            **auth("VRE_"),
            "VRE_MODE": "distributed",
            "VRE_HOST": "127.0.0.1",
            "VRE_PORT": str(ports["gateway"]),
            "VRE_PUBLIC_URL": gateway,
            "VRE_DATABASE__URL": databases["gateway"],
            "VRE_MIGRATIONS": "verify",
            "VRE_SERVICE_URLS": json.dumps(
                {name: f"http://127.0.0.1:{ports[name]}" for name in SERVICE_NAMES}
            ),
        },
    }
    if provisioner_token is not None:
        envs["gateway"]["VRE_PROJECTS__PROVISIONER_TOKEN"] = provisioner_token
    if steps_on_host:
        workflows = envs["workflows"]
        del (
            workflows["VRE_WORKFLOWS_GATEWAY_URL"],
            workflows["VRE_WORKFLOWS_REANA__CREDENTIALS_KEY"],
        )
        workflows["VRE_WORKFLOWS_LOCAL__ALLOW_HOST_EXECUTION"] = "true"
    return envs


@contextlib.contextmanager
def running_cluster(
    root: Path, ports: Mapping[str, int], envs: Mapping[str, dict[str, str]], timeout: float
) -> Iterator[Cluster]:
    """The services and the gateway started (databases migrated before), ready, stopped at
    the end; the processes' log tails are printed when something fails."""

    def process(name: str) -> ServiceProcess:
        return ServiceProcess(name, ports[name], envs[name], root / name)

    running = Cluster(
        gateway=process("gateway"), services={name: process(name) for name in SERVICE_NAMES}
    )
    try:
        for proc in running.processes:
            proc.start()
        deadline = time.monotonic() + timeout
        for proc in running.processes:
            proc.wait_ready(deadline)
        yield running
    except BaseException:
        print(running.report())
        raise
    finally:
        running.stop()
