"""Load: 200 simulated users on a mixed workload, in both modes (locust, loopback).

Each mode runs in its own process (``python -m bench.load serve-<mode> CONFIG``), with tokens
of a test issuer whose key this benchmark holds:

- **embedded**: what `vre up` starts — a private PostgreSQL server and a real Rucio (with its
  daemons) under the data folder, every service mounted in the gateway's process;
- **distributed**: each service and the gateway its own uvicorn process (configured by
  environment, as the images are), PostgreSQL, Rucio on PostgreSQL; the services fetch the
  issuer's keys from a discovery document and JWKS served on loopback. Workflow steps run
  on the host (no container images offline), so the workflows service runs without a
  gateway URL or REANA key, which it refuses beside host execution.

Twenty accounts each get a project (created all at once), a few files and a run. Then, per
mode: one 1 KiB upload at a time and 8 at once (p50 of each, uploads per second — the figures
of issue 18), and ``locust --headless`` (bench/locustfile.py) runs

- the baseline: 200 users calling ``GET /healthz`` at the same pace (1–3 s between calls) —
  the offered request rate, and the latency of the cheapest request under that load;
- the mix: 200 users over the 20 accounts listing DIDs, reading a DID's metadata, uploading
  small files (1–16 KiB), submitting runs and polling their status.

Rows: requests/s of the mix against the baseline's (1.0: the VRE kept up with the offered
rate), p50/p99 per operation with the issue's targets, and the error count (5xx, timeouts,
refused connections, any failed request; target 0). The embedded mode runs as `vre up` does on
two cores (a front process beside the primary), and once more on one process, for comparison.
The baseline runs as long as the mix, with the same ramp-up (users start at ``spawn_rate``
a second): a shorter baseline spends more of its time ramping up and offers less, and the
mix would seem to beat it. ``--quick``: 15 s each instead of 60 s. ``python -m bench.load
[embedded|embedded1|distributed] [--quick]`` runs the modes named.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.report import Row
from vre_common.testing import TestIssuer, free_port

ROOT = Path(__file__).resolve().parents[1]
USERS = 200
ACCOUNTS = 20
LOCUST = Path(sys.executable).parent / "locust"
OPERATIONS = ("list", "metadata", "small upload", "run submission", "status poll")
MODES = ("embedded", "embedded on one process", "distributed")
_SERVE = {
    "embedded": "embedded",
    "embedded on one process": "embedded1",
    "distributed": "distributed",
}


# ---------------------------------------------------------------------- server processes


def _serve_embedded(config: dict[str, Any]) -> None:
    """`vre up`'s embedded VRE: PostgreSQL and Rucio under the data folder, services mounted,
    on as many processes as `vre up` takes (a front beside the primary on two cores)."""
    processes = int(config["processes"])  # _start shared the metrics (as `vre up`)
    from vre_common.logging import configure_logging
    from vre_gateway.config import GatewaySettings
    from vre_gateway.embedded import build_embedded, serve, start_backends

    configure_logging("WARNING", json=True)  # backend errors as JSON lines, read at the end
    issuer = _issuer(config)
    settings = GatewaySettings(
        mode="embedded",
        data=Path(config["data"]),
        port=config["port"],
        auth={"issuers": [issuer.issuer], "audience": issuer.audience},
    )
    with _jwks_server(issuer, config["issuer_port"]):  # the fronts fetch the issuer's keys
        backends = start_backends(settings)
        try:
            assert backends.postgres is not None
            settings.database = settings.database.model_copy(update=backends.database("gateway"))
            app, front = build_embedded(
                settings, validator=issuer.validator(), backends=backends, processes=processes
            )
            serve(
                app,
                settings,
                backends=backends,
                front_settings=front,
                processes=processes,
                log_level="warning",
            )
        finally:
            backends.stop()


def _serve_distributed(config: dict[str, Any]) -> None:
    """The distributed mode: each service and the gateway its own uvicorn process, PostgreSQL,
    Rucio on PostgreSQL; tokens checked against this process's discovery document and JWKS."""
    from tests.support.distributed import (
        SERVICE_NAMES,
        clean_environment,
        migrate,
        postgres_databases,
        running_cluster,
        service_environments,
    )
    from vre_common.postgres import PostgresServer
    from vre_rucio_local import LocalRucio, LocalRucioConfig

    data = Path(config["data"])
    issuer = _issuer(config)
    ports = {name: free_port() for name in (*SERVICE_NAMES, "gateway")}
    ports["gateway"] = config["port"]
    provisioner = issuer.token("vre-gateway", exp=int(time.time()) + 86400,
                               **{"wlcg.groups": ["/vre/services"]})  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with (
        _jwks_server(issuer, config["issuer_port"]),
        PostgresServer(data / "postgres") as postgres,
        postgres.fresh_database("rucio") as rucio_db,
        LocalRucio(
            LocalRucioConfig(
                data_dir=data / "rucio",
                database_url=postgres.url(rucio_db, driver="psycopg"),
                log_level="WARNING",
            )
        ) as rucio,
        postgres_databases(postgres, "gateway", "workflows", "catalogue", "zenodo") as db,
    ):
        rucio.daemons.start()
        envs = {
            name: clean_environment(VRE_DATA=str(data / name / "vre-data"), **env)
            for name, env in service_environments(
                data,
                ports,
                issuer.issuer,
                rucio,
                db,
                provisioner_token=provisioner,
                steps_on_host=True,
            ).items()
        }
        (data / "migrations").mkdir()
        migrate({name: envs[name] for name in db}, data / "migrations")
        with running_cluster(data, ports, envs, timeout=180) as cluster:
            (data / "logs.json").write_text(
                json.dumps([str(p.log_path) for p in cluster.processes])
            )
            stop.wait()


def _issuer(config: dict[str, Any]) -> TestIssuer:
    from joserfc.jwk import RSAKey

    issuer = TestIssuer(issuer=config["issuer"])
    issuer.key = RSAKey.import_key(json.loads(Path(config["keyfile"]).read_text()))
    return issuer


@contextlib.contextmanager
def _jwks_server(issuer: TestIssuer, port: int) -> Iterator[None]:
    """The issuer's discovery document and JWKS on loopback (what the services fetch)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from joserfc.jwk import RSAKey

    public = RSAKey.import_key(issuer.key.as_dict(private=False)).as_dict(private=False)
    documents = {
        "/.well-known/openid-configuration": {
            "issuer": issuer.issuer,
            "jwks_uri": f"{issuer.issuer}jwks",
        },
        "/jwks": {"keys": [{**public, "kid": issuer.key.kid, "alg": "RS256", "use": "sig"}]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 900  # minutes when other work keeps the cores busy
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # its `finally` stops Rucio and PostgreSQL; a kill would not
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
    raise RuntimeError(f"the VRE did not start:\n{log.read_text()[-3000:]}")


# ---------------------------------------------------------------------- fixtures


def _spec() -> dict[str, Any]:
    step = {"name": "hello", "environment": "docker.io/library/debian:bookworm-slim",
            "commands": ["echo hello"]}  # fmt: skip
    return {
        "version": "0.9.4",
        "inputs": {"parameters": {}},
        "workflow": {"type": "serial", "specification": {"steps": [step]}},
    }


async def _prepare_account(
    http: httpx.AsyncClient, issuer: TestIssuer, tag: str, i: int
) -> dict[str, Any]:
    user = f"load{i:02d}"
    token = issuer.token(user, exp=int(time.time()) + 7200)
    headers = {"Authorization": f"Bearer {token}"}
    r = await http.get("/datalake/scopes/mine", headers=headers)
    r.raise_for_status()
    scope = r.json()["scope"]
    slug = f"load-{tag}-{i:02d}"
    r = await http.post("/projects", json={"name": f"Load {i}", "slug": slug}, headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"POST /projects: {r.status_code} {r.text[:300]}")
    project_scope = f"proj.{slug}"
    files: list[str] = []
    for target in (scope, project_scope, scope):
        name = f"load-seed-{len(files)}.bin"
        r = await http.put(f"/datalake/files/{target}/{name}", content=b"x" * 2048,
                           headers=headers)  # fmt: skip
        if r.status_code not in (200, 201):
            raise RuntimeError(f"seed upload: {r.status_code} {r.text[:300]}")
        files.append(f"{target}:{name}")
    r = await http.post("/workflows/runs", json={"spec": _spec()}, headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"POST /workflows/runs: {r.status_code} {r.text[:300]}")
    return {"token": token, "scope": scope, "project_scope": project_scope, "files": files,
            "runs": [r.json()["id"]]}  # fmt: skip


def _prepare(url: str, issuer: TestIssuer, tag: str) -> list[dict[str, Any]]:
    """Per account: a token, its scope, a project (and its scope), three files, one run."""

    async def prepare() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            return list(
                await asyncio.gather(
                    *(_prepare_account(http, issuer, tag, i) for i in range(ACCOUNTS))
                )
            )

    return asyncio.run(prepare())


# ---------------------------------------------------------------------- locust


def _locust(
    url: str, user_class: str, seconds: int, spawn_rate: int, csv_prefix: Path, env: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Run locust headless; its per-name stats rows (plus "Aggregated")."""
    command = [
        str(LOCUST), "--headless", "-f", str(ROOT / "bench" / "locustfile.py"),
        "--host", url, "--users", str(USERS), "--spawn-rate", str(spawn_rate),
        "--run-time", f"{seconds}s", "--stop-timeout", "10", "--csv", str(csv_prefix),
        "--only-summary", "--loglevel", "WARNING", user_class,
    ]  # fmt: skip
    log = csv_prefix.with_suffix(".log")
    with log.open("wb") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    stats = Path(f"{csv_prefix}_stats.csv")
    if not stats.exists():
        raise RuntimeError(f"locust failed ({done.returncode}):\n{log.read_text()[-3000:]}")
    with stats.open() as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def _failures(csv_prefix: Path) -> list[str]:
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open() as handle:
        return [
            f"{row['Occurrences']}× {row['Method']} {row['Name']}: {row['Error'][:200]}"
            for row in csv.DictReader(handle)
        ]


def _server_errors(log: Path) -> list[str]:
    """The server's backend errors and 5xx answers, counted by kind (for the report)."""
    kinds: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        bad = entry.get("event") in ("backend_error", "request_failed")
        if bad or entry.get("level") == "error":
            key = f"{entry.get('event')}: {str(entry.get('detail') or entry.get('error'))[:150]}"
            kinds[key] = kinds.get(key, 0) + 1
    return [f"server {count}× {kind}" for kind, count in sorted(kinds.items(), key=lambda x: -x[1])]


def _ms(row: dict[str, str], column: str) -> float:
    value = row.get(column) or "0"
    return float(value) if value != "N/A" else 0.0


def _small_uploads(url: str, account: dict[str, Any], rounds: int) -> tuple[float, float, float]:
    """1 KiB uploads into the account's scope: p50 of one alone, p50 of each of 8 at once, and
    the uploads per second 8 at once make (the figures of issue 18)."""
    headers = {"Authorization": f"Bearer {account['token']}"}
    body = b"k" * 1024

    async def one(http: httpx.AsyncClient) -> float:
        started = time.perf_counter()
        r = await http.put(f"/datalake/files/{account['scope']}/small-{uuid.uuid4().hex}",
                           content=body, headers=headers)  # fmt: skip
        if r.status_code != 201:
            raise RuntimeError(f"1 KiB upload: {r.status_code} {r.text[:300]}")
        return time.perf_counter() - started

    async def measure() -> tuple[float, float, float]:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
            await one(http)  # warm-up
            alone = [await one(http) for _ in range(rounds * 2)]
            each: list[float] = []
            walls: list[float] = []
            for _ in range(rounds):
                started = time.perf_counter()
                each += await asyncio.gather(*(one(http) for _ in range(8)))
                walls.append(time.perf_counter() - started)
        return statistics.median(alone), statistics.median(each), 8 * len(walls) / sum(walls)

    return asyncio.run(measure())


def _start(
    mode: str, tmp: Path, issuer: TestIssuer, issuer_port: int
) -> tuple[subprocess.Popen[bytes], str, Path]:
    keyfile = tmp / "key.json"
    keyfile.write_text(json.dumps(issuer.key.as_dict(private=True)))
    port = free_port()
    config = tmp / "server.json"
    config.write_text(json.dumps({
        "port": port, "keyfile": str(keyfile), "data": str(tmp / "data"),
        "issuer": issuer.issuer, "issuer_port": issuer_port,
        "processes": 1 if mode == "embedded on one process" else 2,
    }))  # fmt: skip
    (tmp / "data").mkdir()
    log = tmp / "vre.log"
    # the embedded mode's processes share their metrics through files, as under `vre up`
    (tmp / "metrics").mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.load", f"serve-{_SERVE[mode]}", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env if mode != "distributed" else None,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_up(url, server, log)
    return server, url, log


def _run_mode(mode: str, quick: bool, base: Path | None) -> list[Row]:
    """Everything for one mode: start it, seed it, the upload figures, the two locust runs."""
    seconds = 15 if quick else 60
    baseline_seconds = seconds  # the same ramp-up share as the mix: the same offered rate
    spawn_rate = 100 if quick else 20
    issuer_port = free_port()
    issuer = TestIssuer(issuer=f"http://127.0.0.1:{issuer_port}/")
    with tempfile.TemporaryDirectory(dir=base, prefix=f"load-{_SERVE[mode]}-") as tmpdir:
        tmp = Path(tmpdir)
        server, url, log = _start(mode, tmp, issuer, issuer_port)
        try:
            accounts = _prepare(url, issuer, f"{mode[0]}{free_port()}")
            fixtures = tmp / "fixtures.json"
            fixtures.write_text(json.dumps(accounts))
            alone, each, per_second = _small_uploads(url, accounts[0], 3 if quick else 10)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LOAD_FIXTURES": str(fixtures)}
            health = _locust(url, "HealthUser", baseline_seconds, spawn_rate, tmp / "health", env)
            mix = _locust(url, "MixedUser", seconds, spawn_rate, tmp / "mix", env)
            failures = _failures(tmp / "mix") + _failures(tmp / "health")
            logs = [log]
            if (tmp / "data" / "logs.json").exists():
                logs += [Path(p) for p in json.loads((tmp / "data" / "logs.json").read_text())]
            for path in logs:
                failures += _server_errors(path)
        finally:
            # SIGINT, not SIGTERM: uvicorn re-raises the signal that stopped it, and only
            # KeyboardInterrupt unwinds through the server's `finally` that stops Rucio.
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
    h, m = health["Aggregated"], mix["Aggregated"]
    h_rps, m_rps = float(h["Requests/s"]), float(m["Requests/s"])
    h_p50 = max(_ms(h, "50%"), 0.1)
    errors = int(m["Failure Count"]) + int(h["Failure Count"])
    label = f"{USERS} users, {ACCOUNTS} accounts"
    group = f"load ({mode})"
    rows = [
        Row(group, "1 KiB upload alone: p50", alone * 1000, "ms", baseline=h_p50),
        Row(group, "8 × 1 KiB uploads at once: p50 of each", each * 1000, "ms",
            baseline=alone * 1000),
        Row(group, "8 × 1 KiB uploads at once: uploads/s", per_second, "uploads/s",
            baseline=1 / alone),
        Row(group, f"baseline: GET /healthz, {USERS} users, requests/s", h_rps,
            f"req/s (p50 {_ms(h, '50%'):.0f} ms, p99 {_ms(h, '99%'):.0f} ms)",
            baseline=h_rps),
        Row(group, f"mixed workload, {label}: requests/s", m_rps,
            f"req/s ({m['Request Count']} requests in {seconds} s)", baseline=h_rps,
            target=">= 0.9 of the offered rate", ok=m_rps >= 0.9 * h_rps),
    ]  # fmt: skip
    for op in OPERATIONS:
        row = mix.get(op)
        if row is None:
            continue
        p50, p99 = _ms(row, "50%"), _ms(row, "99%")
        target, ok = "", None
        if op == "small upload":
            target, ok = "p50 <= 150 ms, p99 <= 1 s", p50 <= 150 and p99 <= 1000
        elif op in ("metadata", "status poll"):
            target, ok = "p50 <= 30 ms", p50 <= 30
        elif op == "run submission":
            target, ok = "p50 <= 100 ms", p50 <= 100
        rows.append(
            Row(group, f"{op}: p50 ({row['Request Count']} requests)", p50,
                f"ms (p99 {p99:.0f} ms)", baseline=h_p50, target=target, ok=ok)
        )  # fmt: skip
    rows.append(
        Row(group, f"errors (5xx, timeouts, refused), {label}", errors, "requests",
            target="0", ok=errors == 0)
    )  # fmt: skip
    for line in failures[:15]:
        print(f"load ({mode}) failure: {line}", file=sys.stderr)
    return rows


def run(quick: bool = False, modes: tuple[str, ...] = MODES) -> list[Row]:
    """Measure and return the table rows: the embedded mode (two processes, then one), then the
    distributed mode."""
    base = ROOT / ".vre" if (ROOT / ".vre").exists() else None
    rows: list[Row] = []
    for mode in modes:
        rows += _run_mode(mode, quick, base)
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].startswith("serve-"):
        server_config = json.loads(Path(sys.argv[2]).read_text())
        if sys.argv[1] in ("serve-embedded", "serve-embedded1"):
            _serve_embedded(server_config)
        else:
            _serve_distributed(server_config)
    else:
        chosen = tuple(m for m in MODES if _SERVE[m] in sys.argv) or MODES
        for r in run(quick="--quick" in sys.argv, modes=chosen):
            print(r)
