"""Workflows: submission → running latency, 50 concurrent runs under a limit of 4, and staging a
Data Lake input by hard link vs copy — the local backend served by uvicorn in its own process;
then the same service on a real one-node Slurm cluster.

- 30 sequential single-step runs (``echo``; 10 with --quick): time from sending ``POST /runs``
  to the run's recorded ``started_at`` (p50/p99; target p50 < 300 ms), against spawning the
  same ``bash -c echo`` directly and against the ``GET /healthz`` round trip;
- 50 runs (``sleep 0.3``; 20 with --quick) submitted at once with ``max_concurrent_runs=4``:
  all finish, none lost, at most 4 running at any instant (from the runs' started/finished
  timestamps), started in submission order; wall time against 50 × one run's time ÷ 4;
- a 1 GiB input (256 MiB with --quick) uploaded to a real Rucio (POSIX RSE) through the
  datalake service and staged into a run's workspace. The service copies when it runs as root
  (root ignores the read-only bit that protects a hard-linked replica), so the two ways are
  also timed directly with the service's own ``link_or_copy`` on the same replica.

- on Slurm (where slurm-wlm and munge are installed and we are root): submission → running
  of single-step runs and the overhead per step of a 3-step run (wall time ÷ 3, beside the same
  run on the local executor), against a bare ``sbatch --wait`` of the same command.

Run as ``python -m bench.workflows CONFIG.json`` it is the workflows server itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.report import Row
from tests.support.specs import serial_spec
from vre_common.testing import TestIssuer, free_port

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20
TERMINAL = ("finished", "failed", "cancelled", "interrupted", "deleted")
LIMIT = 4


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    # A run finishing at the very instant another starts does not overlap it.
    events = sorted([(s, 1) for s, _ in intervals] + [(f, -1) for _, f in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


# ---------------------------------------------------------------------- server process


def _serve(config_path: str) -> None:
    import uvicorn
    from joserfc.jwk import RSAKey

    from vre_workflows.config import WorkflowsSettings
    from vre_workflows.main import create_app

    config = json.loads(Path(config_path).read_text())
    issuer = TestIssuer()
    issuer.key = RSAKey.import_key(json.loads(Path(config["keyfile"]).read_text()))
    app = create_app(
        WorkflowsSettings.model_validate(config["settings"]), validator=issuer.validator()
    )
    uvicorn.run(
        app, host="127.0.0.1", port=int(config["port"]), log_level="warning", access_log=False
    )


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} did not start:\n{log.read_text()[-3000:]}")


# ---------------------------------------------------------------------- client helpers


async def _submit(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    sent = time.time()
    r = await http.post("/runs", json=body)
    if r.status_code != 201:
        raise RuntimeError(f"POST /runs: {r.status_code} {r.text[:500]}")
    run: dict[str, Any] = r.json()
    run["_accepted"] = time.perf_counter()  # the run joins the queue just before its 201
    return run, sent


def _out_of_order(expected: list[str], started: list[str]) -> tuple[int, int]:
    """How many runs started at another position than ``expected`` gives, and the largest shift."""
    position = {run_id: k for k, run_id in enumerate(expected)}
    shifts = [abs(position[run_id] - k) for k, run_id in enumerate(started)]
    return sum(1 for d in shifts if d), max(shifts, default=0)


async def _wait(
    http: httpx.AsyncClient, run_id: str, within: float = 600, every: float = 0.01
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        r = await http.get(f"/runs/{run_id}")
        r.raise_for_status()
        run: dict[str, Any] = r.json()
        if run["status"] in TERMINAL:
            if run["status"] != "finished":
                raise RuntimeError(f"run {run_id} {run['status']}: {run.get('error')}")
            return run
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {run['status']} after {within} s")
        await asyncio.sleep(every)


# ---------------------------------------------------------------------- measurements


def _spawn_baseline(n: int) -> list[float]:
    """Spawning the step's ``bash -c`` directly (as the executor does), in ms."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    times = []
    for i in range(n + 5):
        t = time.perf_counter()
        subprocess.run(["bash", "-c", "echo hello"], env=env, stdout=subprocess.DEVNULL, check=True)
        if i >= 5:  # warm-up
            times.append((time.perf_counter() - t) * 1000)
    return times


async def _latency(http: httpx.AsyncClient, n: int, spawn: list[float]) -> list[Row]:
    echo = serial_spec("echo hello")
    for _ in range(3):  # warm-up: validator worker, database, first subprocess
        run, _ = await _submit(http, {"spec": echo})
        await _wait(http, run["id"])
    to_running, to_finished, post_rtt = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        run, sent = await _submit(http, {"spec": echo})
        post_rtt.append((time.perf_counter() - t0) * 1000)
        done = await _wait(http, run["id"])
        to_running.append((_ts(done["started_at"]) - sent) * 1000)
        to_finished.append((_ts(done["finished_at"]) - sent) * 1000)

    health = []
    for _ in range(n + 5):
        t = time.perf_counter()
        (await http.get("/healthz")).raise_for_status()
        health.append((time.perf_counter() - t) * 1000)
    health = health[5:]

    p50, p50_fin = statistics.median(to_running), statistics.median(to_finished)
    spawn50, health50 = statistics.median(spawn), statistics.median(health)
    return [
        Row(
            "workflows",
            "baseline: bash -c echo spawned directly p50",
            spawn50,
            f"ms (p99 {_percentile(spawn, 0.99):.2f})",
        ),
        Row(
            "workflows",
            "baseline: GET /healthz round trip p50",
            health50,
            f"ms (p99 {_percentile(health, 0.99):.2f})",
        ),
        Row(
            "workflows",
            f"POST /runs round trip p50 ({n} runs)",
            statistics.median(post_rtt),
            f"ms (p99 {_percentile(post_rtt, 0.99):.1f})",
            baseline=health50,
        ),
        Row(
            "workflows",
            f"submission → running p50 ({n} sequential runs)",
            p50,
            f"ms (p99 {_percentile(to_running, 0.99):.1f})",
            baseline=spawn50,
            target="p50 < 300 ms",
            ok=p50 < 300,
        ),
        Row(
            "workflows",
            "submission → finished p50 (echo)",
            p50_fin,
            f"ms (p99 {_percentile(to_finished, 0.99):.1f})",
            baseline=spawn50,
        ),
    ]


async def _concurrent(http: httpx.AsyncClient, n: int) -> list[Row]:
    spec = serial_spec("sleep 0.3")
    singles = []
    for _ in range(3):
        run, sent = await _submit(http, {"spec": spec})
        done = await _wait(http, run["id"])
        singles.append(_ts(done["finished_at"]) - sent)
    single = statistics.median(singles)

    tag = f"conc-{os.getpid()}-{int(time.time())}"
    start = time.time()
    posted = await asyncio.gather(
        *[_submit(http, {"spec": spec, "name": f"{tag}-{i:03d}"}) for i in range(n)],
        return_exceptions=True,
    )
    accepted: list[dict[str, Any]] = [p[0] for p in posted if not isinstance(p, BaseException)]
    refused = [p for p in posted if isinstance(p, BaseException)]
    ids = {run["id"] for run in accepted}
    outcomes = await asyncio.gather(
        *[_wait(http, i, every=0.1) for i in ids], return_exceptions=True
    )
    finished: list[dict[str, Any]] = [
        d for d in outcomes if isinstance(d, dict) and d["status"] == "finished"
    ]
    wall = max(_ts(d["finished_at"]) for d in finished) - start if finished else float("nan")

    listed: set[str] = set()  # every run of the caller, paged: are all 50 there?
    page = 1
    while True:
        r = await http.get("/runs", params={"page": page, "size": 200})
        r.raise_for_status()
        body = r.json()
        listed |= {item["id"] for item in body["items"] if item["name"].startswith(tag)}
        if page * body["size"] >= body["total"] or not body["items"]:
            break
        page += 1

    peak = _max_overlap([(_ts(d["started_at"]), _ts(d["finished_at"])) for d in finished])
    by_start = [d["id"] for d in sorted(finished, key=lambda d: d["started_at"])]
    accepted_at = {run["id"]: run["_accepted"] for run in accepted}
    by_accepted = sorted(ids, key=accepted_at.__getitem__)
    burst_moved, burst_shift = _out_of_order(by_accepted, by_start)
    # created_at is stamped before the insert waits for SQLite's write lock, so concurrent
    # submissions can commit (and join the queue) in another order than their created_at.
    by_created = [d["id"] for d in sorted(finished, key=lambda d: d["created_at"])]
    created_moved, created_shift = _out_of_order(by_created, by_start)

    # Queue order with an unambiguous submission order: one client submitting one after the
    # other (each POST answered before the next is sent) while the runs queue up.
    sequential = [(await _submit(http, {"spec": spec}))[0]["id"] for _ in range(n)]
    seq_done = [await _wait(http, i, every=0.1) for i in sequential]
    seq_start = [d["id"] for d in sorted(seq_done, key=lambda d: d["started_at"])]
    seq_moved, seq_shift = _out_of_order(sequential, seq_start)
    seq_peak = _max_overlap([(_ts(d["started_at"]), _ts(d["finished_at"])) for d in seq_done])
    lost = n - len(ids & listed)
    ideal = n * single / LIMIT
    return [
        Row("workflows", "one sleep-0.3 run alone: submission → finished", single * 1000, "ms"),
        Row(
            "workflows",
            f"{n} concurrent submissions: finished",
            len(finished),
            f"of {n} ({len(refused)} refused)",
            target=f"= {n}",
            ok=len(finished) == n,
        ),
        Row(
            "workflows",
            f"{n} concurrent submissions: lost (not listed)",
            lost,
            "runs",
            target="0",
            ok=lost == 0,
        ),
        Row(
            "workflows",
            f"{n} runs, limit {LIMIT}: max running at once (timestamps)",
            peak,
            "runs",
            target=f"<= {LIMIT}",
            ok=peak <= LIMIT,
        ),
        Row(
            "workflows",
            f"{n} concurrent: started out of acceptance (201) order",
            burst_moved,
            f"runs (max shift {burst_shift})",
            target="0",
            ok=burst_moved == 0,
        ),
        Row(
            "workflows",
            f"{n} concurrent: started out of created_at order",
            created_moved,
            f"runs (max shift {created_shift})",
        ),
        Row(
            "workflows",
            f"{n} sequential submissions: started out of submission order",
            seq_moved,
            f"runs (max shift {seq_shift}; max running {seq_peak})",
            target="0",
            ok=seq_moved == 0 and seq_peak <= LIMIT,
        ),
        Row("workflows", f"{n} runs, limit {LIMIT}: wall time", wall, "s", baseline=ideal),
        Row("workflows", f"baseline: {n} × one run ÷ {LIMIT}", ideal, "s", baseline=ideal),
    ]


def _time(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t, result


def _upload(lake: httpx.Client, tmp: Path, size: int) -> tuple[str, dict[str, Any], Path]:
    """A random file uploaded to the Data Lake; its DID, resolved record and POSIX replica."""
    scope = lake.get("/datalake/scopes/mine").json()["scope"]
    source = tmp / "input.bin"
    block = os.urandom(4 * MiB)
    with source.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)

    def chunks() -> Iterator[bytes]:
        with source.open("rb") as handle:
            while chunk := handle.read(4 * MiB):
                yield chunk

    name = f"bench-{os.getpid()}-{int(time.time())}.bin"
    r = lake.put(f"/datalake/files/{scope}/{name}", content=chunks())
    if r.status_code >= 300:
        raise RuntimeError(f"upload: {r.status_code} {r.text[:500]}")
    source.unlink()
    r = lake.post("/datalake/resolve", json={"dids": [f"{scope}:{name}"]})
    r.raise_for_status()
    (resolved,) = r.json()["files"]
    paths = [Path(p["path"]) for p in resolved["replicas"] if p.get("path")]
    replica = next(p for p in paths if p.is_file())
    return f"{scope}:{name}", resolved, replica


async def _service_staging(http: httpx.AsyncClient, did: str, label: str) -> Row:
    """A run reading the DID: its step starts later than a run's without inputs by the staging."""
    gaps: dict[str, float] = {}
    how = "?"
    name = did.partition(":")[2]
    for kind, command, inputs in (
        ("none", "true", []),
        ("did", f"test -s {name}", [{"did": did}]),
    ):
        run, _ = await _submit(http, {"spec": serial_spec(command), "inputs": inputs})
        done = await _wait(http, run["id"], every=0.05)
        gaps[kind] = _ts(done["steps"][0]["started_at"]) - _ts(done["started_at"])
        if kind == "did":
            how = done["inputs"][0]["staged_by"]
        await http.delete(f"/runs/{run['id']}")
    as_root = ", service runs as root" if os.geteuid() == 0 else ""
    return Row(
        "workflows",
        f"service stages a {label} DID (staged_by={how}{as_root})",
        gaps["did"] - gaps["none"],
        "s",
    )


def _direct_staging(replica: Path, adler32: str, tmp: Path, reps: int, label: str) -> list[Row]:
    """The two ways timed with the service's own link_or_copy, on the same replica."""
    from vre_workflows.workspace import digest_file, link_or_copy

    copies, verifies, links = [], [], []
    for i in range(reps):
        target = tmp / "ws" / f"copy-{i}.bin"
        seconds, how = _time(link_or_copy, replica, target, prefer_link=False)
        assert how == "copy"
        copies.append(seconds)
        seconds, digest = _time(digest_file, target)  # the service checks a copy's adler32
        if digest.adler32 != adler32:
            raise RuntimeError("copied input does not match Rucio's adler32")
        verifies.append(seconds)
        target.unlink()
    mode = replica.stat().st_mode
    for i in range(reps):
        target = tmp / "ws" / f"link-{i}.bin"
        # euid=1000: the code path of a service not running as root (root always copies).
        seconds, how = _time(link_or_copy, replica, target, prefer_link=True, euid=1000)
        if how != "link":
            raise RuntimeError("hard link refused (input and workspace on different filesystems?)")
        links.append(seconds)
        target.unlink()
    os.chmod(replica, mode)  # linking made the replica read-only
    copy_s, verify_s, link_s = (statistics.median(v) for v in (copies, verifies, links))
    how_measured = "direct link_or_copy"
    if os.geteuid() == 0:
        how_measured += " (service runs as root, so measured directly)"
    return [
        Row(
            "workflows",
            f"staging {label} by copy, {how_measured}",
            copy_s * 1000,
            "ms",
            baseline=copy_s * 1000,
        ),
        Row(
            "workflows",
            f"staging {label} by copy + adler32 check (what the service does)",
            (copy_s + verify_s) * 1000,
            "ms",
            baseline=copy_s * 1000,
        ),
        Row(
            "workflows",
            f"staging {label} by hard link, {how_measured}",
            link_s * 1000,
            "ms",
            baseline=copy_s * 1000,
        ),
        Row(
            "workflows",
            f"staging {label}: hard link ÷ copy",
            link_s / copy_s,
            f"(copy is {copy_s / link_s:,.0f}× the link)",
        ),
    ]


def _start_server(
    tmp: Path, name: str, keyfile: Path, settings: dict[str, Any]
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    config = tmp / f"{name}.json"
    config.write_text(json.dumps({"port": port, "keyfile": str(keyfile), "settings": settings}))
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.workflows", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_up(url, proc, log, f"{name} server")
    return url, proc


async def _per_step(http: httpx.AsyncClient, backend: str, reps: int) -> tuple[float, float]:
    """(submission → running p50 of one-step runs, wall time per step of 3-step runs), in s."""
    one = {"spec": serial_spec("echo hello"), "backend": backend}
    three = serial_spec("true")
    steps = three["workflow"]["specification"]["steps"]
    steps += [dict(steps[0], name="two"), dict(steps[0], name="three")]
    await _wait(http, (await _submit(http, one))[0]["id"], every=0.05)  # warm-up
    to_running, per_step = [], []
    for _ in range(reps):
        run, sent = await _submit(http, one)
        done = await _wait(http, run["id"], every=0.05)
        to_running.append(_ts(done["started_at"]) - sent)
        run, _ = await _submit(http, {"spec": three, "backend": backend})
        done = await _wait(http, run["id"], every=0.05)
        per_step.append((_ts(done["finished_at"]) - _ts(done["started_at"])) / 3)
    return statistics.median(to_running), statistics.median(per_step)


def _bare_sbatch(env: dict[str, str], reps: int) -> float:
    """``sbatch --wait`` of the step's command, p50 in s."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(
            ["sbatch", "--wait", "--quiet", "--output=/dev/null", "--wrap", "bash -c 'echo hello'"],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _slurm_rows(tmp: Path, keyfile: Path, headers: dict[str, str], reps: int) -> list[Row]:
    from services.workflows.tests.support.slurm import missing_binaries, running_cluster

    missing = missing_binaries()
    if missing or os.geteuid() != 0:
        why = f"missing {', '.join(missing)}" if missing else "needs root"
        return [Row("workflows", f"Slurm rows skipped ({why})", float("nan"), "")]
    rows: list[Row] = []
    with running_cluster(tmp / "slurm") as cluster:
        settings = {
            "data_dir": str(tmp / "wf-slurm"),
            "database": {"url": f"sqlite+aiosqlite:///{tmp}/workflows-slurm.db"},
            "local": {
                "max_concurrent_runs": LIMIT,
                "allow_host_execution": True,
                "containers": {"runtime": "none"},
            },
            "slurm": {"enabled": True, "slurm_conf": str(cluster.conf), "poll_seconds": 0.1},
        }
        url, proc = _start_server(tmp, "workflows-slurm", keyfile, settings)
        try:

            async def measure() -> tuple[float, float, float, float]:
                async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
                    local = await _per_step(http, "local", reps)
                    slurm = await _per_step(http, "slurm", reps)
                return (*local, *slurm)

            local_run, local_step, slurm_run, slurm_step = asyncio.run(measure())
            bare = _bare_sbatch(cluster.env, reps)
        finally:
            proc.terminate()
            proc.wait(15)
    rows += [
        Row("workflows", "baseline: bare sbatch --wait of the step's command p50", bare, "s"),
        Row(
            "workflows",
            f"Slurm: submission → running p50 ({reps} one-step runs)",
            slurm_run,
            "s",
            baseline=bare,
        ),
        Row("workflows", "local: submission → running p50 (same runs)", local_run, "s"),
        Row(
            "workflows",
            f"Slurm: wall time per step of a 3-step run p50 ({reps} runs)",
            slurm_step,
            "s",
            baseline=bare,
        ),
        Row(
            "workflows",
            "local: wall time per step of the same 3-step run p50",
            local_step,
            "s",
        ),
    ]
    return rows


def run(quick: bool = False) -> list[Row]:
    """Measure and return the table rows."""
    from vre_rucio_local import LocalRucio, LocalRucioConfig

    n_latency = 10 if quick else 30
    n_concurrent = 20 if quick else 50
    size = (256 if quick else 1024) * MiB
    issuer = TestIssuer()
    headers = issuer.headers("alice", exp=int(time.time()) + 7200)
    base_tmp = ROOT / ".vre" if (ROOT / ".vre").exists() else None
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=base_tmp) as tmpdir:
        tmp = Path(tmpdir)
        keyfile = tmp / "key.json"
        keyfile.write_text(json.dumps(issuer.key.as_dict(private=True)))
        rucio = LocalRucio(LocalRucioConfig(data_dir=tmp / "rucio", log_level="WARNING"))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            rucio.up()
            lake_port, wf_port = free_port(), free_port()
            lake_log = (tmp / "datalake.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.datalake_server",
                        str(lake_port),
                        rucio.url,
                        rucio.admin_username,
                        rucio.admin_password,
                        str(keyfile),
                    ],
                    cwd=ROOT,
                    stdout=lake_log,
                    stderr=subprocess.STDOUT,
                )
            )
            lake_url = f"http://127.0.0.1:{lake_port}"
            config = tmp / "workflows.json"
            config.write_text(
                json.dumps(
                    {
                        "port": wf_port,
                        "keyfile": str(keyfile),
                        "settings": {
                            "data_dir": str(tmp / "wf"),
                            "database": {"url": f"sqlite+aiosqlite:///{tmp}/workflows.db"},
                            "local": {
                                "max_concurrent_runs": LIMIT,
                                "allow_host_execution": True,
                                "staging": "link",
                                "containers": {"runtime": "none"},
                            },
                            "datalake": {"url": lake_url + "/datalake"},
                        },
                    }
                )
            )
            wf_log = (tmp / "workflows.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.workflows", str(config)],
                    cwd=ROOT,
                    stdout=wf_log,
                    stderr=subprocess.STDOUT,
                )
            )
            wf_url = f"http://127.0.0.1:{wf_port}"
            _wait_up(lake_url, procs[0], tmp / "datalake.log", "datalake server")
            _wait_up(wf_url, procs[1], tmp / "workflows.log", "workflows server")

            spawn = _spawn_baseline(n_latency)
            with httpx.Client(base_url=lake_url, headers=headers, timeout=600) as lake:
                did, resolved, replica = _upload(lake, tmp, size)
            label = f"{size // MiB} MiB"

            async def measure() -> None:
                limits = httpx.Limits(max_connections=n_concurrent + 10)
                async with httpx.AsyncClient(
                    base_url=wf_url, headers=headers, timeout=600, limits=limits
                ) as http:
                    rows.extend(await _latency(http, n_latency, spawn))
                    rows.extend(await _concurrent(http, n_concurrent))
                    rows.append(await _service_staging(http, did, label))

            asyncio.run(measure())
            rows.extend(
                _direct_staging(replica, resolved["adler32"], tmp, 2 if quick else 3, label)
            )
            rows.extend(_slurm_rows(tmp, keyfile, headers, 3 if quick else 8))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            rucio.close()
    return rows


if __name__ == "__main__":
    _serve(sys.argv[1])
