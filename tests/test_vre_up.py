"""`vre up` as a user runs it: the embedded VRE on its own PostgreSQL server under the data
folder — a file and a project survive a restart, a second `vre up` on the folder is refused
with who holds it, and Ctrl-C (SIGINT) stops Rucio and PostgreSQL."""

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

from vre_common.postgres import PostgresServer
from vre_common.testing import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

VRE = Path(sys.executable).with_name("vre")
START_TIMEOUT = 600.0  # ≈ 30 s on an idle machine; minutes when others keep the cores busy


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VRE_")}


@contextlib.contextmanager
def vre_up(data: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`vre up` in the background; stopped with SIGINT (Ctrl-C) at the end if still running."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(VRE), "up", "--port", str(port), "--data", str(data)],
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
