"""`vre up` as a user runs it: the embedded VRE on its own PostgreSQL server under the data
folder — a file and a project survive a restart, a second `vre up` on the folder is refused
with who holds it, and Ctrl-C (SIGINT) stops Rucio and PostgreSQL; on two processes, the
front serves the Data Lake and forwards the rest, each request counted once, and a front
that dies is started again."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.specs import serial_spec
from vre_common.postgres import PostgresServer
from vre_common.testing import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

VRE = Path(sys.executable).with_name("vre")
START_TIMEOUT = 600.0  # ≈ 30 s on an idle machine; minutes when others keep the cores busy


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VRE_")}


@contextlib.contextmanager
def vre_up(data: Path, port: int, log: Path, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """`vre up` in the background; stopped with SIGINT (Ctrl-C) at the end if still running."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(VRE), "up", "--port", str(port), "--data", str(data), *options],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(url: str, process: subprocess.Popen[bytes], log: Path, data: Path) -> dict[str, str]:
    """Wait for /readyz, then make sure it is this `vre up` that answers (the port was free
    when chosen, minutes before the server binds it): its development issuer's token works.
    Returns alice's headers."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"vre up exited:\n{log.read_text()[-3000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=3).status_code == 200:
                alice = _token(data, "alice")
                me = httpx.get(f"{url}/me", headers=alice, timeout=30)
                assert process.poll() is None, f"vre up exited:\n{log.read_text()[-3000:]}"
                assert me.status_code == 200, f"another server answers on {url}: {me.text}"
                return alice
        time.sleep(0.5)
    pytest.fail(f"vre up was not ready in {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def _token(data: Path, user: str) -> dict[str, str]:
    token = subprocess.run(
        [str(VRE), "token", user, "--data", str(data)],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def data() -> Iterator[Path]:
    # Outside pytest's folders: as root, the PostgreSQL server runs as another user, which
    # must keep reaching its files while other pytest sessions make theirs private.
    root = Path(tempfile.mkdtemp(prefix="vre-up-test-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def test_restart_keeps_data_second_up_is_refused_ctrl_c_stops_postgres(
    data: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "vre-up.log"
    payload = os.urandom(3000)

    with vre_up(data, port, log) as first:
        alice = _ready(url, first, log, data)
        put = httpx.put(f"{url}/datalake/files/user.alice/kept.dat", content=payload,
                        headers=alice, timeout=60)  # fmt: skip
        assert put.status_code == 201, put.text
        project = httpx.post(f"{url}/projects", json={"name": "Kept", "slug": "kept"},
                             headers=alice, timeout=60)  # fmt: skip
        assert project.status_code == 201, project.text

        second = subprocess.run(
            [str(VRE), "up", "--port", str(free_port()), "--data", str(data)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 1
        said = " ".join(second.stderr.split())  # the console wraps long lines
        assert f"the data folder {data} is in use by another `vre up`" in said
        assert f"pid {first.pid}" in said

        first.send_signal(signal.SIGINT)  # Ctrl-C
        first.wait(timeout=120)
    assert not PostgresServer(data / "postgres").is_running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=3)

    with vre_up(data, port, log) as again:
        alice = _ready(url, again, log, data)
        back = httpx.get(f"{url}/datalake/files/user.alice/kept.dat", headers=alice, timeout=60)
        assert back.status_code == 200, back.text
        assert back.content == payload
        projects = httpx.get(f"{url}/projects", headers=alice, timeout=60)
        assert [p["slug"] for p in projects.json()["items"]] == ["kept"]
    assert not PostgresServer(data / "postgres").is_running


SPEC = serial_spec("sleep 60", name="wait")


def _fronts(pid: int) -> list[int]:
    """The front processes `vre up` (``pid``) started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
            if ppid == pid and b"vre_gateway.front" in command:
                found.append(int(entry.name))
    return found


def _count(metrics: str, **labels: str) -> float:
    """The sum of ``vre_http_requests_total`` over the samples with these labels."""
    total = 0.0
    for line in metrics.splitlines():
        if not line.startswith("vre_http_requests_total{"):
            continue
        body, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in body for k, v in labels.items()):
            total += float(value)
    return total


def test_front_serves_the_data_lake_forwards_the_rest_and_comes_back(
    data: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "vre-up.log"

    with vre_up(data, port, log, "--processes", "2") as up:
        alice = _ready(url, up, log, data)
        fronts = _fronts(up.pid)
        assert len(fronts) == 1, fronts

        put = httpx.put(f"{url}/datalake/files/user.alice/two.dat", content=b"x" * 2048,
                        headers=alice, timeout=60)  # fmt: skip
        assert put.status_code == 201, put.text
        # a run lives in the primary: submitted, seen running and cancelled through the front
        run = httpx.post(f"{url}/workflows/runs", json={"spec": SPEC}, headers=alice, timeout=60)
        assert run.status_code == 201, run.text
        run_url = f"{url}/workflows/runs/{run.json()['id']}"
        deadline = time.monotonic() + 120
        while httpx.get(run_url, headers=alice, timeout=30).json()["status"] != "running":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.3)
        cancel = httpx.post(f"{run_url}/cancel", headers=alice, timeout=60)
        assert cancel.status_code in (200, 202), cancel.text
        deadline = time.monotonic() + 60
        while httpx.get(run_url, headers=alice, timeout=30).json()["status"] != "cancelled":
            assert time.monotonic() < deadline, "the run was not cancelled"
            time.sleep(0.3)

        # /metrics sums both processes, and counts a forwarded request once
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        assert _count(metrics, service="datalake", method="PUT", status="201") == 1
        assert _count(metrics, service="workflows", method="POST", route="/runs") == 1
        assert _count(metrics, route="") == 0  # the front's forwarding is not counted

        # a problem's type points at the URL the client called, through the front
        missing = httpx.get(f"{url}/projects/no-such-project", headers=alice, timeout=30)
        assert missing.json()["type"].startswith(f"{url}/problems/")

        os.kill(fronts[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while not (again := [p for p in _fronts(up.pid) if p != fronts[0]]):
            assert time.monotonic() < deadline, f"no new front:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        back = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                back = httpx.get(f"{url}/datalake/files/user.alice/two.dat", headers=alice,
                                 timeout=10)  # fmt: skip
                if back.status_code == 200:
                    break
            time.sleep(0.2)
        assert back is not None
        assert back.content == b"x" * 2048

        up.send_signal(signal.SIGTERM)
        up.wait(timeout=120)
    assert not Path(f"/proc/{again[0]}").exists()
    assert not PostgresServer(data / "postgres").is_running
