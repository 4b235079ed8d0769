"""Load: 200 simulated users on a mixed workload against the embedded VRE (locust, loopback).

The whole embedded VRE — gateway with the datalake, workflows (local executor), catalogue,
zenodo and ivoa services mounted, a real Rucio server with its daemons — runs in its own
process (``python -m bench.load serve CONFIG``; tokens from a test issuer whose key this
benchmark holds). Twenty accounts each get a project, a few files and a run; then
``locust --headless`` (bench/locustfile.py) runs:

- the baseline: 200 users calling ``GET /healthz`` at the same pace (1–3 s between calls) —
  the offered request rate, and the latency of the cheapest request under that load;
- the mix: 200 users over the 20 accounts listing DIDs, reading a DID's metadata, uploading
  small files (1–16 KiB), submitting runs and polling their status.

Rows: requests/s of the mix against the baseline's (1.0: the VRE kept up with the offered
rate), p50/p99 per operation against the baseline's p50, and the error count (5xx, timeouts,
refused connections, any failed request; target 0). ``--quick``: 5 s + 15 s instead of 20 s +
60 s.
"""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
import tempfile
import time
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


# ---------------------------------------------------------------------- server process


def _serve(config_path: str) -> None:
    import uvicorn
    from joserfc.jwk import RSAKey

    from vre_common.logging import configure_logging
    from vre_gateway.config import GatewaySettings
    from vre_gateway.embedded import build_service_apps, start_backends
    from vre_gateway.main import create_app

    configure_logging("WARNING", json=True)  # backend errors as JSON lines, read at the end
    config = json.loads(Path(config_path).read_text())
    issuer = TestIssuer()
    issuer.key = RSAKey.import_key(json.loads(Path(config["keyfile"]).read_text()))
    validator = issuer.validator()
    data = Path(config["data"])
    settings = GatewaySettings(
        mode="embedded",
        data=data,
        port=int(config["port"]),
        database={"url": f"sqlite+aiosqlite:///{data / 'gateway.db'}"},
    )
    backends = start_backends(settings)
    try:
        apps = build_service_apps(settings, validator, backends)
        app = create_app(settings, service_apps=apps, validator=validator)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        backends.stop()


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the embedded VRE did not start:\n{log.read_text()[-3000:]}")


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
    http: httpx.AsyncClient, issuer: TestIssuer, tag: str, i: int, one_at_a_time: asyncio.Lock
) -> dict[str, Any]:
    user = f"load{i:02d}"
    token = issuer.token(user, exp=int(time.time()) + 7200)
    headers = {"Authorization": f"Bearer {token}"}
    r = await http.get("/datalake/scopes/mine", headers=headers)
    r.raise_for_status()
    scope = r.json()["scope"]
    slug = f"load-{tag}-{i:02d}"
    # One project at a time: the gateway holds its SQLite write lock while the datalake makes
    # the project's Rucio account and scope, so concurrent creations time out on the lock.
    async with one_at_a_time:
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
        lock = asyncio.Lock()
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            return list(
                await asyncio.gather(
                    *(_prepare_account(http, issuer, tag, i, lock) for i in range(ACCOUNTS))
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


def run(quick: bool = False) -> list[Row]:
    """Measure and return the table rows."""
    seconds = 15 if quick else 60
    baseline_seconds = 5 if quick else 20
    spawn_rate = 100 if quick else 20
    issuer = TestIssuer()
    base = ROOT / ".vre" if (ROOT / ".vre").exists() else None
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=base, prefix="load-") as tmpdir:
        tmp = Path(tmpdir)
        keyfile = tmp / "key.json"
        keyfile.write_text(json.dumps(issuer.key.as_dict(private=True)))
        port = free_port()
        config = tmp / "server.json"
        config.write_text(json.dumps({"port": port, "keyfile": str(keyfile), "data": str(tmp)}))
        log = tmp / "vre.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "bench.load", "serve", str(config)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_up(url, server, log)
            fixtures = tmp / "fixtures.json"
            fixtures.write_text(json.dumps(_prepare(url, issuer, str(port))))
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LOAD_FIXTURES": str(fixtures)}
            health = _locust(url, "HealthUser", baseline_seconds, spawn_rate, tmp / "health", env)
            mix = _locust(url, "MixedUser", seconds, spawn_rate, tmp / "mix", env)
            failures = _failures(tmp / "mix") + _failures(tmp / "health")
            failures += _server_errors(log)
        finally:
            # SIGINT, not SIGTERM: uvicorn re-raises the signal that stopped it, and only
            # KeyboardInterrupt unwinds through the server's `finally` that stops Rucio.
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    h, m = health["Aggregated"], mix["Aggregated"]
    h_rps, m_rps = float(h["Requests/s"]), float(m["Requests/s"])
    h_p50 = max(_ms(h, "50%"), 0.1)
    errors = int(m["Failure Count"]) + int(h["Failure Count"])
    label = f"{USERS} users, {ACCOUNTS} accounts"
    rows += [
        Row("load", f"baseline: GET /healthz, {USERS} users, requests/s", h_rps,
            f"req/s (p50 {_ms(h, '50%'):.0f} ms, p99 {_ms(h, '99%'):.0f} ms)",
            baseline=h_rps),
        Row("load", f"mixed workload, {label}: requests/s", m_rps,
            f"req/s ({m['Request Count']} requests in {seconds} s)", baseline=h_rps,
            target=">= 0.9 of the offered rate", ok=m_rps >= 0.9 * h_rps),
    ]  # fmt: skip
    for op in OPERATIONS:
        row = mix.get(op)
        if row is None:
            continue
        rows.append(
            Row("load", f"{op}: p50 ({row['Request Count']} requests)", _ms(row, "50%"),
                f"ms (p99 {_ms(row, '99%'):.0f} ms)", baseline=h_p50)
        )  # fmt: skip
    rows.append(
        Row("load", f"errors (5xx, timeouts, refused), {label}", errors, "requests",
            target="0", ok=errors == 0)
    )  # fmt: skip
    for line in failures[:15]:
        print(f"load failure: {line}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        _serve(sys.argv[2])
    else:
        for r in run(quick="--quick" in sys.argv):
            print(r)
