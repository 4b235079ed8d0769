"""Test support for the datalake service: settings, a served app, the rucio-clients witness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from vre_common.testing import TestIssuer, free_port
from vre_datalake.config import (
    AccountSettings,
    DatalakeSettings,
    RucioSettings,
    StorageSettings,
)

SERVE = Path(__file__).with_name("serve.py")
DEFAULT_RSE = "VRE-DISK-1"
SECOND_RSE = "VRE-DISK-2"


def make_settings(
    *,
    rucio_url: str,
    username: str,
    password: str,
    issuer: str,
    audience: str,
    identity_mode: str = "service",
    webdav_token: str | None = None,
    webdav_verify: bool | str = True,
    limit_bytes: int = 4 * 1024**3,
) -> DatalakeSettings:
    """Settings for a datalake app on a test Rucio (no environment involved)."""
    return DatalakeSettings(
        auth={"issuers": [issuer], "audience": audience},
        rucio=RucioSettings(
            url=rucio_url,
            service_account="root",
            service_username=username,
            service_password=SecretStr(password),
            identity_mode=identity_mode,  # type: ignore[arg-type]
            retry_after_seconds=3,
        ),
        accounts=AccountSettings(default_limit_bytes=limit_bytes),
        storage=StorageSettings(
            default_rse=DEFAULT_RSE,
            fsync=False,
            webdav_token=SecretStr(webdav_token) if webdav_token else None,
            webdav_verify=webdav_verify,
        ),
    )


@dataclass
class ServedApp:
    """A datalake app served by uvicorn in its own process (real streaming, own RSS)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def peak_rss(self) -> int:
        """The process's peak resident set size in bytes (VmHWM)."""
        return _status_kib(self.process.pid, "VmHWM") * 1024

    def rss(self) -> int:
        """The process's current resident set size in bytes."""
        return _status_kib(self.process.pid, "VmRSS") * 1024

    def stop(self) -> None:
        """Stop the server (SIGTERM, then kill)."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def serve(params: dict[str, Any], issuer: TestIssuer, log: Path) -> ServedApp:
    """Start ``serve.py`` with ``make_settings(**params)`` and wait for /healthz."""
    port = free_port()
    config = {
        "port": port,
        "settings": params,
        "issuer": issuer.issuer,
        "audience": issuer.audience,
        "jwk": issuer.key.as_dict(private=False),
    }
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, str(SERVE), json.dumps(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return ServedApp(url=url, process=process, log=log)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the server did not start: {log.read_text()[-3000:]}")


def run_rucio_client(config: Path, code: str, **params: Any) -> Any:
    """Run ``code`` with the official rucio-clients in a subprocess (its config is
    process-wide); the code prints one JSON value as its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "X509_"))}
    env["RUCIO_CONFIG"] = str(config)
    prelude = "import json, sys\nparams = json.loads(sys.argv[1])\n"
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", prelude + textwrap.dedent(code), json.dumps(params)],
        capture_output=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])
