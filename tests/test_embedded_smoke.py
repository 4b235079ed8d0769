"""`make run` in CI: start `vre up`, wait until ready, get a token with `vre token`, call /me."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vre_common.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
VRE = [sys.executable, "-m", "vre_gateway"]


def test_vre_up_token_me(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "VRE_DATA": str(tmp_path / "data"), "VRE_PORT": str(port)}
    log = (tmp_path / "up.log").open("w")
    proc = subprocess.Popen([*VRE, "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            try:
                ready = httpx.get(url + "/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None, (tmp_path / "up.log").read_text()
        assert ready.status_code == 200, (tmp_path / "up.log").read_text()

        token = subprocess.run(
            [*VRE, "token", "alice"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        me = httpx.get(url + "/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "alice"
        assert me.json()["issuer"] == f"{url}/dev-issuer/"

        anonymous = httpx.get(url + "/me")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"

        docs = httpx.get(url + "/openapi.json")
        assert docs.status_code == 200
        assert any(p.startswith("/datalake/") for p in docs.json()["paths"])

        unknown = subprocess.run(
            [*VRE, "token", "mallory"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert unknown.returncode == 2
        assert "unknown development user" in unknown.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    # a clean stop on SIGTERM (128 + 15), backends stopped and the runtime file removed
    assert proc.returncode == 143, (tmp_path / "up.log").read_text()
    assert not (tmp_path / "data" / "runtime.json").exists()
