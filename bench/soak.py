"""Soak: many uploads of random sizes through the embedded VRE while Rucio restarts.

``make soak`` (``python -m bench.soak``; ``SOAK_UPLOADS`` or ``--uploads``, default 1,000):
a Rucio server of its own (SQLite, POSIX RSEs) and the gateway with the datalake mounted
(``bench.datalake_server``, uvicorn in its own process). Uploads of random sizes (0 B to
4 MiB, log-uniform, fixed seed) run with a few at a time from several users; when half of
them have started, the Rucio server is stopped (SIGINT to gunicorn, as a crash or an operator
would) and started again on the same port. Then every upload is checked against Rucio itself
(admin token) and the storage element's folder:

- completed: answered 201, the DID exists with our size, adler32 and md5, its replica file on
  the RSE has exactly our bytes and a rule of the uploader's account keeps it;
- completed after a 5xx answer: the same, for an upload answered 503 because Rucio went away
  during its registration — the datalake finished the registration once Rucio was back
  (a replica Rucio registered cannot be taken back through its API); the client's retry is
  answered 200 with the same checksums;
- failed cleanly: answered with a 5xx problem document, no DID, no file (final or temporary);
- lost: answered 201 but the DID or its bytes are missing or differ;
- partial: anything else (a failed upload that left a DID or a file, another answer).

The counts are printed; the exit status is 1 when anything was lost or partial.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from rich.console import Console
from rich.table import Table

from vre_common.testing import TestIssuer, free_port
from vre_rucio_local import LocalRucio, LocalRucioConfig

ROOT = Path(__file__).resolve().parents[1]
MAX_SIZE = 4 << 20
USERS = ("alice", "bob", "carol", "dave")
SETTLE_SECONDS = 20.0  # how long settling a lost registration may take once Rucio is back
PROBLEM = "application/problem+json"


@dataclass
class Upload:
    """One upload: what was sent and what the client was answered."""

    index: int
    user: str
    name: str
    size: int
    adler32: str
    md5: str
    status: int | None = None
    problem: bool = False
    error: str | None = None
    outcome: str = ""
    why: str = ""

    @property
    def scope(self) -> str:
        return f"user.{self.user}"


@dataclass
class Plan:
    """The uploads to make (sizes and bytes from a fixed seed)."""

    uploads: list[Upload] = field(default_factory=list)
    seeds: dict[int, int] = field(default_factory=dict)


def _size(rng: random.Random) -> int:
    if rng.random() < 0.03:
        return 0
    return min(MAX_SIZE, int(2 ** rng.uniform(0, 22)))


def _content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def make_plan(count: int, seed: int, tag: str) -> Plan:
    rng = random.Random(seed)
    plan = Plan()
    for i in range(count):
        size = _size(rng)
        content_seed = rng.getrandbits(64)
        data = _content(content_seed, size)
        plan.uploads.append(
            Upload(
                index=i,
                user=USERS[i % len(USERS)],
                name=f"soak-{tag}-{i:05d}.bin",
                size=size,
                adler32=f"{zlib.adler32(data) & 0xFFFFFFFF:08x}",
                md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            )
        )
        plan.seeds[i] = content_seed
    return plan


async def _upload(http: httpx.AsyncClient, issuer: TestIssuer, up: Upload, seed: int) -> None:
    data = _content(seed, up.size)
    try:
        r = await http.put(
            f"/datalake/files/{up.scope}/{up.name}",
            content=data,
            headers=issuer.headers(up.user, exp=int(time.time()) + 7200),
        )
    except httpx.HTTPError as exc:
        up.error = f"{type(exc).__name__}: {exc}"
        return
    up.status = r.status_code
    up.problem = r.headers.get("content-type", "").startswith(PROBLEM)
    if r.status_code >= 300:
        up.error = r.text[:300]


async def run_uploads(
    url: str, issuer: TestIssuer, plan: Plan, rucio: LocalRucio, concurrency: int
) -> tuple[float, float]:
    """All uploads, Rucio restarted when half have started; the outage's start and end."""
    queue: asyncio.Queue[Upload] = asyncio.Queue()
    for up in plan.uploads:
        queue.put_nowait(up)
    half = len(plan.uploads) // 2
    started = 0
    outage: list[float] = []
    restart_task: asyncio.Task[None] | None = None

    async def restart() -> None:
        outage.append(time.monotonic())
        await asyncio.to_thread(rucio.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(rucio.start)
        outage.append(time.monotonic())

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal started, restart_task
        while not queue.empty():
            up = queue.get_nowait()
            started += 1
            if started == half and restart_task is None:
                restart_task = asyncio.create_task(restart())
            await _upload(http, issuer, up, plan.seeds[up.index])

    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        for user in USERS:  # accounts and scopes exist before the clock starts
            headers = issuer.headers(user, exp=int(time.time()) + 7200)
            (await http.get("/datalake/scopes/mine", headers=headers)).raise_for_status()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    if restart_task is not None:
        await restart_task
    return (outage[0], outage[1]) if len(outage) == 2 else (0.0, 0.0)


def _digest(path: Path) -> tuple[str, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    adler = 1
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            md5.update(chunk)
            adler = zlib.adler32(chunk, adler)
    return f"{adler & 0xFFFFFFFF:08x}", md5.hexdigest()


def _files_on_rse(roots: list[Path]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for root in roots:
        for path in root.rglob("soak-*"):
            if path.is_file():
                base = path.name.split(".vre-part")[0]
                found.setdefault(base, []).append(path)
    return found


def verify(rucio: LocalRucio, plan: Plan) -> Counter[str]:
    """Classify every upload against Rucio (admin) and the RSE folders."""
    token = rucio.admin_token()
    on_rse = _files_on_rse(list(rucio.rse_prefixes.values()))
    counts: Counter[str] = Counter()
    with httpx.Client(
        base_url=rucio.url, headers={"X-Rucio-Auth-Token": token}, timeout=120
    ) as http:
        for up in plan.uploads:
            r = http.get(f"/dids/{up.scope}/{up.name}")
            did: dict[str, Any] | None = r.json() if r.status_code == 200 else None
            if r.status_code not in (200, 404):
                raise RuntimeError(f"Rucio answered {r.status_code} for {up.name}: {r.text}")
            files = on_rse.get(up.name, [])
            replica_paths: list[Path] = []
            if did is not None:
                rr = http.post(
                    "/replicas/list",
                    json={"dids": [{"scope": up.scope, "name": up.name}], "all_states": True},
                )
                for line in rr.text.splitlines():
                    if line.strip():
                        for pfns in json.loads(line).get("rses", {}).values():
                            replica_paths += [Path(unquote(urlsplit(p).path)) for p in pfns]
            rules = http.get(f"/dids/{up.scope}/{up.name}/rules") if did is not None else None
            ruled = rules is not None and any(
                json.loads(line).get("account") == up.user
                for line in rules.text.splitlines()
                if line.strip()
            )
            temporary = [f for f in files if ".vre-part" in f.name]
            problem = ""
            if did is None:
                problem = "no DID in Rucio"
            elif (did.get("bytes"), did.get("adler32"), did.get("md5")) != (
                up.size,
                up.adler32,
                up.md5,
            ):
                problem = f"Rucio has other checksums: {did}"
            elif not replica_paths or not all(p.is_file() for p in replica_paths):
                problem = f"replica file missing: {replica_paths}"
            elif any(_digest(p) != (up.adler32, up.md5) for p in replica_paths):
                problem = "replica bytes differ"
            elif not ruled:
                problem = "no rule of the account keeps the replica"
            elif temporary:
                problem = f"temporary file left: {temporary}"
            if up.status in (200, 201):
                up.outcome, up.why = ("lost", problem) if problem else ("completed", "")
            elif up.status is not None and up.status >= 500 and up.problem:
                if did is None and not files:
                    up.outcome = "failed cleanly"
                elif not problem:
                    # Rucio went away mid-registration; the datalake finished it once back
                    up.outcome = "completed after a 5xx answer"
                else:
                    up.outcome = "partial"
                    up.why = f"answered {up.status}: {problem}; files {files}"
            else:
                up.outcome = "partial"
                up.why = f"unexpected answer {up.status}: {up.error}"
            counts[up.outcome] += 1
    return counts


def _serve(tmp: Path, rucio: LocalRucio, issuer: TestIssuer) -> tuple[str, subprocess.Popen[bytes]]:
    keyfile = tmp / "key.json"
    keyfile.write_text(json.dumps(issuer.key.as_dict(private=True)))
    port = free_port()
    with (tmp / "vre.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [
                sys.executable, "-m", "bench.datalake_server", str(port), rucio.url,
                rucio.admin_username, rucio.admin_password, str(keyfile),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return url, process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the VRE did not start:\n{(tmp / 'vre.log').read_text()[-3000:]}")


def soak(uploads: int, seed: int, concurrency: int, console: Console) -> Counter[str]:
    """Run the soak and print its report; the outcome counts."""
    issuer = TestIssuer()
    tag = f"{seed}-{int(time.time())}"
    plan = make_plan(uploads, seed, tag)
    total = sum(u.size for u in plan.uploads)
    base = ROOT / ".vre" if (ROOT / ".vre").exists() else None
    with tempfile.TemporaryDirectory(dir=base, prefix="soak-") as tmpdir:
        tmp = Path(tmpdir)
        rucio = LocalRucio(LocalRucioConfig(data_dir=tmp / "rucio", log_level="WARNING"))
        process: subprocess.Popen[bytes] | None = None
        try:
            rucio.up()
            url, process = _serve(tmp, rucio, issuer)
            console.print(
                f"soak: {uploads} uploads, {total / (1 << 20):,.0f} MiB in all, "
                f"{concurrency} at a time, seed {seed}; Rucio restarts halfway"
            )
            began = time.monotonic()
            down, up = asyncio.run(run_uploads(url, issuer, plan, rucio, concurrency))
            wall = time.monotonic() - began
            # An upload whose registration outcome was lost is settled in the background once
            # Rucio is back: check again for a while before calling anything partial.
            deadline = time.monotonic() + SETTLE_SECONDS
            while True:
                counts = verify(rucio, plan)
                if not (counts["lost"] or counts["partial"]) or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
            rucio.close()
    table = Table(title=f"Soak: {uploads} uploads, Rucio restarted once (seed {seed})")
    table.add_column("outcome")
    table.add_column("uploads", justify="right")
    for outcome in (
        "completed",
        "completed after a 5xx answer",
        "failed cleanly",
        "lost",
        "partial",
    ):
        table.add_row(outcome, str(counts.get(outcome, 0)))
    console.print(table)
    console.print(
        f"wall time {wall:.1f} s; Rucio down for {up - down:.1f} s, from "
        f"{down - began:.1f} s after the start"
    )
    answers = Counter(str(u.status) for u in plan.uploads)
    console.print(f"answers: {dict(sorted(answers.items()))}")
    for u in plan.uploads:
        if u.outcome in ("lost", "partial"):
            console.print(f"[red]{u.outcome}[/]: {u.scope}:{u.name} ({u.size} B): {u.why}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=int(os.environ.get("SOAK_UPLOADS", "1000")))
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    counts = soak(args.uploads, args.seed, args.concurrency, Console(width=150))
    sys.exit(1 if counts.get("lost", 0) or counts.get("partial", 0) else 0)


if __name__ == "__main__":
    main()
