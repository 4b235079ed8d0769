"""Data Lake: streaming through the gateway vs a plain copy, metadata latency vs Rucio,
and a large DID listing — on a real Rucio server with a POSIX storage element.

- upload/download of one 1 GiB file (256 MiB with --quick) through the gateway and the
  datalake service with curl, side by side with the official client on the same file and
  RSE (``rucio upload``, ``rucio download`` from rucio-clients in .venv-rucio), with
  ``md5sum`` of the file and with ``shutil.copyfile``; the server's peak RSS growth (VmHWM
  minus RSS before the transfer);
- the same with a WebDAV storage element (WsgiDAV under cheroot, TLS, bearer token — what
  dCache/EOS sites speak; 1 GiB, 256 MiB with --quick), against a PUT/GET of the same file
  straight to that WebDAV server;
- GET one DID's metadata through the gateway vs straight to Rucio's REST API (p50/p99);
- listing 100,000 DIDs (10,000 with --quick) as NDJSON: time to first result, total, and
  the server's RSS growth.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.report import Row
from vre_common.testing import TestIssuer, free_port
from vre_rucio_local import LocalRucio, LocalRucioConfig

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(4 * MiB)
    with path.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)


def _stream_file(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MiB):
            yield chunk


RUCIO_CLI = ROOT / ".venv-rucio" / "bin" / "rucio"


def _settle(scratch: Path, size: int) -> None:
    """Start a transfer on a settled machine: nothing left to write back to the disk (the
    previous steps' files would slow the disk down under it) and memory the kernel has used
    before. This machine is a virtual one whose host backs its memory on first touch: the
    first write of a GiB into memory never used costs several times the system time of the
    next one (a 1 GiB ``dd`` into a file: 2.7 s, then 0.4 s), which would fall on whichever
    side of a comparison comes first. A file of the transfer's size, written and removed,
    touches that memory."""
    warm = scratch / "warm-up.bin"
    block = bytes(4 * MiB)
    with warm.open("wb") as out:
        for _ in range(max(1, size // len(block))):
            out.write(block)
    warm.unlink()
    os.sync()


def _timed(
    command: list[str], scratch: Path, size: int, env: dict[str, str] | None = None
) -> float:
    """Seconds ``command`` took (it must succeed), started after :func:`_settle`."""
    _settle(scratch, size)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr.decode()[-2000:]}")
    return seconds


def _side_by_side(
    base: str,
    headers: dict[str, str],
    scope: str,
    rucio: LocalRucio,
    server_pid: int,
    tmp: Path,
    size: int,
) -> list[Row]:
    """Our upload and download with curl vs the official client's on the same file and
    RSE, vs md5sum of the file, vs a plain copy; the server's RSS growth meanwhile."""
    source = tmp / "big.bin"
    _make_file(source, size)
    md5_s = min(_timed(["md5sum", str(source)], tmp, size) for _ in range(2))  # the file is cached
    _settle(tmp, size)
    start = time.perf_counter()
    shutil.copyfile(source, tmp / "copy.bin")
    copy_s = time.perf_counter() - start
    (tmp / "copy.bin").unlink()

    # the official client, as the Rucio admin, into a scope of its own
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "X509_"))}
    env["RUCIO_CONFIG"] = str(rucio.write_client_config(tmp / "client" / "rucio.cfg"))
    rucio_scope = f"bench{uuid.uuid4().hex[:6]}"
    token = {"X-Rucio-Auth-Token": rucio.admin_token()}
    httpx.post(f"{rucio.url}/accounts/{rucio.admin_account}/scopes/{rucio_scope}",
               headers=token, timeout=60).raise_for_status()  # fmt: skip
    theirs = tmp / f"theirs-{uuid.uuid4().hex[:6]}.bin"
    os.link(source, theirs)  # the same bytes under the name the client registers
    rucio_up_s = _timed(
        [str(RUCIO_CLI), "upload", "--rse", "VRE-DISK-1", "--scope", rucio_scope, str(theirs)],
        tmp,
        size,
        env,
    )

    auth = f"Authorization: {headers['Authorization']}"
    name = f"big-{uuid.uuid4().hex[:6]}.bin"
    url = f"{base}/datalake/files/{scope}/{name}"
    rss0 = _rss_kib(server_pid, "VmRSS")
    _reset_peak(server_pid)
    up_s = _timed(["curl", "-sS", "-f", "-o", "/dev/null", "-H", auth, "-H", "Expect:",
                   "-T", str(source), f"{url}?rse=VRE-DISK-1"], tmp, size)  # fmt: skip
    up_peak = _rss_kib(server_pid, "VmHWM") - rss0

    rucio_down_s = _timed(
        [str(RUCIO_CLI), "download", "--dir", str(tmp / "theirs-down"), f"{scope}:{name}"],
        tmp,
        size,
        env,
    )
    rss0 = _rss_kib(server_pid, "VmRSS")
    _reset_peak(server_pid)
    down_s = _timed(["curl", "-sS", "-f", "-o", str(tmp / "down.bin"), "-H", auth, url], tmp, size)
    down_peak = _rss_kib(server_pid, "VmHWM") - rss0
    if (tmp / "down.bin").stat().st_size != size:
        raise RuntimeError("the download is not the whole file")
    for leftover in (source, theirs, tmp / "down.bin"):
        leftover.unlink()
    shutil.rmtree(tmp / "theirs-down", ignore_errors=True)

    label = f"{size // MiB} MiB"
    mib = size / MiB
    return [
        Row("datalake", f"md5sum of the file, {label}", mib / md5_s, "MiB/s", baseline=mib / md5_s),
        Row("datalake", f"plain copy, {label}", mib / copy_s, "MiB/s", baseline=mib / copy_s),
        Row("datalake", f"rucio upload (official client), {label}", mib / rucio_up_s, "MiB/s",
            baseline=mib / rucio_up_s),
        Row("datalake", f"upload through gateway (curl) vs rucio upload, {label}", mib / up_s,
            "MiB/s", baseline=mib / rucio_up_s, target=">= 2", ok=rucio_up_s / up_s >= 2),
        Row("datalake", f"upload through gateway (curl) vs md5sum, {label}", mib / up_s,
            "MiB/s", baseline=mib / md5_s, target=">= 0.6", ok=md5_s / up_s >= 0.6),
        Row("datalake", f"rucio download (official client), {label}", mib / rucio_down_s,
            "MiB/s", baseline=mib / rucio_down_s),
        Row("datalake", f"download through gateway (curl) vs rucio download, {label}",
            mib / down_s, "MiB/s", baseline=mib / rucio_down_s, target=">= 2",
            ok=rucio_down_s / down_s >= 2),
        Row("datalake", "server peak RSS growth, upload", up_peak / 1024, "MiB",
            target="< 100 MiB", ok=up_peak / 1024 < 100),
        Row("datalake", "server peak RSS growth, download", down_peak / 1024, "MiB",
            target="< 100 MiB", ok=down_peak / 1024 < 100),
    ]  # fmt: skip


DAV_SERVER = ROOT / "services/datalake/tests/datalake_support/webdav_server.py"
DAV_RSE = "VRE-DAV-1"
DAV_TOKEN = "bench-storage-token"


def _start_dav(tmp: Path) -> tuple[str, subprocess.Popen[bytes], Path]:
    """A WebDAV server (WsgiDAV, TLS, token) on loopback; its URL, process and CA file."""
    from services.datalake.tests.datalake_support.tls import self_signed

    root = tmp / "dav"
    (root / "rucio").mkdir(parents=True)
    cert, key = self_signed(tmp)
    port = free_port()
    config = {"root": str(root), "port": port, "cert": str(cert), "key": str(key),
              "token": DAV_TOKEN}  # fmt: skip
    with (tmp / "dav.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(DAV_SERVER), json.dumps(config)], stdout=log, stderr=log
        )
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(cert))
    for _ in range(200):
        try:
            probe = httpx.request(
                "PROPFIND", url + "/rucio/", verify=context,
                headers={"Authorization": f"Bearer {DAV_TOKEN}", "Depth": "0"},
            )  # fmt: skip
            if probe.status_code == 207:
                return url, process, cert
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the WebDAV server did not start: {(tmp / 'dav.log').read_text()[-2000:]}")


def _webdav_rows(
    http: httpx.Client, issuer: TestIssuer, dav_url: str, cert: Path, tmp: Path, size: int
) -> list[Row]:
    """Upload and download through the gateway to the WebDAV RSE vs straight to the server
    (the better of two direct transfers)."""
    source = tmp / "dav-source.bin"
    _make_file(source, size)
    context = ssl.create_default_context(cafile=str(cert))
    direct_headers = {"Authorization": f"Bearer {DAV_TOKEN}"}
    direct_up = direct_down = float("inf")
    with httpx.Client(verify=context, timeout=600, headers=direct_headers) as dav:
        for _ in range(2):  # the better of two: the first also warms the server up
            start = time.perf_counter()
            put = dav.put(f"{dav_url}/rucio/direct.bin", content=_stream_file(source))
            put.raise_for_status()
            direct_up = min(direct_up, time.perf_counter() - start)
            start = time.perf_counter()
            with dav.stream("GET", f"{dav_url}/rucio/direct.bin") as response:
                response.raise_for_status()
                for _ in response.iter_bytes(4 * MiB):
                    pass
            direct_down = min(direct_down, time.perf_counter() - start)
            dav.request("DELETE", f"{dav_url}/rucio/direct.bin")
    headers = issuer.headers("davbench", exp=int(time.time()) + 7200)  # limits on every RSE
    scope = http.get("/datalake/scopes/mine", headers=headers).json()["scope"]
    name = f"dav-{uuid.uuid4().hex[:6]}.bin"
    start = time.perf_counter()
    r = http.put(
        f"/datalake/files/{scope}/{name}",
        content=_stream_file(source),
        params={"rse": DAV_RSE},
        headers=headers,
    )
    up = time.perf_counter() - start
    if r.status_code != 201:
        raise RuntimeError(f"upload to WebDAV: {r.status_code} {r.text[:500]}")
    start = time.perf_counter()
    with http.stream("GET", f"/datalake/files/{scope}/{name}", headers=headers) as response:
        response.raise_for_status()
        for _ in response.iter_bytes(4 * MiB):
            pass
    down = time.perf_counter() - start
    source.unlink()
    label = f"{size // MiB} MiB"
    mib = size / MiB
    rows: list[Row] = [
        Row("datalake", f"WebDAV: PUT straight to the server, {label}", mib / direct_up,
            "MiB/s", baseline=mib / direct_up),
        Row("datalake", f"WebDAV: upload through gateway, {label}", mib / up, "MiB/s",
            baseline=mib / direct_up, target=">= 0.5", ok=direct_up / up >= 0.5),
        Row("datalake", f"WebDAV: GET straight from the server, {label}", mib / direct_down,
            "MiB/s", baseline=mib / direct_down),
        Row("datalake", f"WebDAV: download through gateway, {label}", mib / down, "MiB/s",
            baseline=mib / direct_down, target=">= 0.5", ok=direct_down / down >= 0.5),
    ]  # fmt: skip
    return rows


def run(quick: bool = False) -> list[Row]:
    """Measure and return the table rows."""
    size = (256 if quick else 1024) * MiB
    n_dids = 10_000 if quick else 100_000
    rows: list[Row] = []
    issuer = TestIssuer()
    with tempfile.TemporaryDirectory(
        dir=ROOT / ".vre" if (ROOT / ".vre").exists() else None
    ) as tmpdir:
        tmp = Path(tmpdir)
        keyfile = tmp / "key.json"
        keyfile.write_text(json.dumps(issuer.key.as_dict(private=True)))
        rucio = LocalRucio(LocalRucioConfig(data_dir=tmp / "rucio", log_level="WARNING"))
        rucio.up()
        dav_url, dav_process, dav_cert = _start_dav(tmp)
        rucio.add_webdav_rse(DAV_RSE, dav_url + "/rucio/")
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.datalake_server",
                str(port),
                rucio.url,
                rucio.admin_username,
                rucio.admin_password,
                str(keyfile),
                DAV_TOKEN,
                str(dav_cert),
            ],
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        headers = issuer.headers("alice", exp=int(time.time()) + 7200)
        try:
            with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
                for _ in range(200):
                    try:
                        if http.get("/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.1)
                scope = http.get("/datalake/scopes/mine").json()["scope"]

                # --- streaming: ours vs the official client, md5sum and a plain copy
                rows += _side_by_side(base, headers, scope, rucio, server.pid, tmp, size)
                name = http.put(
                    f"/datalake/files/{scope}/meta-{uuid.uuid4().hex[:6]}.bin", content=b"m" * 4096
                ).json()["name"]
                rows += _webdav_rows(http, issuer, dav_url, dav_cert, tmp, size)

                # --- metadata latency: gateway vs Rucio directly
                token = rucio.admin_token()
                rucio_http = httpx.Client(base_url=rucio.url, headers={"X-Rucio-Auth-Token": token})
                # the same Rucio read the datalake makes: every metadata plugin (custom keys too)
                meta = {"plugin": "ALL"}
                direct, gateway = [], []
                for _ in range(50):  # warm-up
                    http.get(f"/datalake/dids/{scope}/{name}")
                    rucio_http.get(f"/dids/{scope}/{name}/meta", params=meta)
                for _ in range(300):
                    t = time.perf_counter()
                    rucio_http.get(f"/dids/{scope}/{name}/meta", params=meta).raise_for_status()
                    direct.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    http.get(f"/datalake/dids/{scope}/{name}").raise_for_status()
                    gateway.append((time.perf_counter() - t) * 1000)
                added = statistics.median(gateway) - statistics.median(direct)
                rows += [
                    Row(
                        "datalake",
                        "DID metadata, Rucio direct p50",
                        statistics.median(direct),
                        f"ms (p99 {_percentile(direct, 0.99):.2f})",
                    ),
                    Row(
                        "datalake",
                        "DID metadata, through gateway p50",
                        statistics.median(gateway),
                        f"ms (p99 {_percentile(gateway, 0.99):.2f})",
                        baseline=statistics.median(direct),
                    ),
                    Row(
                        "datalake",
                        "DID metadata, added at p50",
                        added,
                        "ms",
                        target="<= 2 ms",
                        ok=added <= 2,
                    ),
                ]

                # --- listing many DIDs as NDJSON
                prefix = f"list-{uuid.uuid4().hex[:6]}"
                batch = 5000
                for i in range(0, n_dids, batch):
                    dids = [
                        {"scope": scope, "name": f"{prefix}-{j:06d}", "type": "DATASET"}
                        for j in range(i, min(n_dids, i + batch))
                    ]
                    rucio_http.post("/dids", json=dids, timeout=600).raise_for_status()
                rss0 = _rss_kib(server.pid, "VmRSS")
                _reset_peak(server.pid)
                start = time.perf_counter()
                first = None
                count = 0
                with http.stream(
                    "GET",
                    f"/datalake/dids/{scope}",
                    params={"name": f"{prefix}-*"},
                    headers={"Accept": "application/x-ndjson"},
                ) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if line.strip():
                            if first is None:
                                first = time.perf_counter() - start
                            count += 1
                total = time.perf_counter() - start
                grow = (_rss_kib(server.pid, "VmHWM") - rss0) / 1024
                if count != n_dids:
                    raise RuntimeError(f"listed {count} of {n_dids} DIDs")
                rows += [
                    Row(
                        "datalake", f"list {n_dids:,} DIDs: first result", (first or 0) * 1000, "ms"
                    ),
                    Row("datalake", f"list {n_dids:,} DIDs: total", total, "s", target="", ok=None),
                    Row(
                        "datalake",
                        f"list {n_dids:,} DIDs: server RSS growth",
                        grow,
                        "MiB",
                        target="flat (< 50 MiB)",
                        ok=grow < 50,
                    ),
                ]
                rucio_http.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
            dav_process.terminate()
            dav_process.wait(timeout=10)
            rucio.close()
    return rows
