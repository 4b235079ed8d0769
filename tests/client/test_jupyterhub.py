"""A real JupyterHub (from .venv-hub) hands the VRE its token through the refresher.

On loopback: the embedded VRE (tests/client/conftest.py, with `vre up`'s development issuer:
`vre token` mints its tokens), and JupyterHub with the
pure-Python configurable-http-proxy, SimpleLocalProcessSpawner and an authenticator whose
auth state carries an access token of the development issuer (minted by `vre token`, again at
every ``refresh_user``, as OAuthenticator refreshes at IAM). alice's single-user server runs
under ``vre-token-refresher``; code in a kernel of that server reads a file of alice's by DID
with ``vre``, and after the Hub has refreshed the token, the same client in the same kernel
keeps working with the new token — never taken from an environment variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import vre
from tests.client.conftest import LiveVre
from vre_common.testing import free_port

pytestmark = [pytest.mark.slow, pytest.mark.rucio]
ROOT = Path(__file__).resolve().parents[2]
HUB_VENV = ROOT / ".venv-hub" / "bin"
if not (HUB_VENV / "jupyterhub").exists():
    pytest.skip(".venv-hub is not built (make deps)", allow_module_level=True)


def _wait_for(
    what: str, check: Any, *, within: float, proc: subprocess.Popen[bytes], log: Path
) -> Any:
    deadline = time.monotonic() + within
    while True:
        assert proc.poll() is None, f"{what}: the process exited\n{log.read_text()[-4000:]}"
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, (
            f"{what}: not within {within}s\n{log.read_text()[-4000:]}"
        )
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


HUB_CONFIG = '''
import asyncio

from jupyterhub.auth import Authenticator

VRE = {vre!r}
DATA = {data!r}


async def dev_token(user):
    """An access token of the VRE's development issuer for ``user`` (what IAM would give)."""
    proc = await asyncio.create_subprocess_exec(
        VRE, "token", user, "--data", DATA, "--lifetime", "300",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(err.decode())
    return out.decode().strip()


class VreDevAuthenticator(Authenticator):
    """Signs in development users; the auth state carries their VRE access token, and
    refresh_user mints a new one, as OAuthenticator does with IAM's refresh token."""

    async def authenticate(self, handler, data):
        name = data["username"]
        return {{"name": name, "auth_state": {{"access_token": await dev_token(name)}}}}

    async def refresh_user(self, user, handler=None, **kwargs):
        return {{"name": user.name, "auth_state": {{"access_token": await dev_token(user.name)}}}}


c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{folder}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{folder}/cookie_secret"
# the proxy waits for slow answers (a kernel start on a loaded machine), not 20 s
c.ConfigurableHTTPProxy.command = ["{bin}/configurable-http-proxy", "--proxy-timeout", "180000"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = "{folder}/proxy.pid"
c.JupyterHub.authenticator_class = VreDevAuthenticator
c.Authenticator.enable_auth_state = True
c.Authenticator.allow_all = True
c.Authenticator.refresh_pre_spawn = True
c.Authenticator.auth_refresh_age = 8  # seconds; IAM deployments: minutes
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{folder}/home/{{username}}"
c.Spawner.cmd = [
    "{bin}/vre-token-refresher", "--interval", "2", "--", "{bin}/jupyterhub-singleuser"
]
c.Spawner.args = ["--allow-root"]
c.Spawner.environment = {{"VRE_URL": {vre_url!r}, "BEARER_TOKEN_FILE": {token_file!r}}}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.JupyterHub.services = [{{"name": "vre-test", "api_token": {service_token!r}}}]
SERVER_SCOPES = ["users:activity!user", "access:servers!server", "admin:auth_state!user"]
c.JupyterHub.load_roles = [
    {{"name": "vre-test", "scopes": ["admin:users", "admin:servers", "tokens"],
      "services": ["vre-test"]}},
    # users may read their own auth state (their own tokens), and so may their servers'
    # JUPYTERHUB_API_TOKEN (a subset of the user's scopes): the refresher needs it
    {{"name": "user", "scopes": ["self", "admin:auth_state!user"]}},
    {{"name": "server", "scopes": SERVER_SCOPES}},
]
c.Spawner.server_token_scopes = SERVER_SCOPES
'''


async def _execute(base: str, token: str, kernel: str, code: str) -> str:
    """Run ``code`` in a kernel of alice's server (Jupyter's websocket protocol): its output."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = base.replace("http://", "ws://") + f"/user/alice/api/kernels/{kernel}/channels"
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
        "msg_type": "execute_request", "version": "5.3", "date": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}  # fmt: skip
    await ws.write_message(
        json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                    "channel": "shell", "buffers": []})
    )  # fmt: skip
    output = []
    try:
        while True:
            raw = await asyncio.wait_for(ws.read_message(), timeout=120)
            assert raw is not None, "the kernel's websocket closed"
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(output)
    finally:
        ws.close()
        # wait for the server's closing handshake: the socket is closed before this loop
        # ends (else it is garbage-collected open, a ResourceWarning in a later test)
        with contextlib.suppress(Exception):
            while await asyncio.wait_for(ws.read_message(), timeout=10) is not None:
                pass


def _sha(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def test_notebook_reads_by_did_with_the_hubs_refreshed_token(
    live_vre: LiveVre, tmp_path: Path
) -> None:
    url, data = live_vre.url, live_vre.data
    vre_bin = str(ROOT / ".venv" / "bin" / "vre")
    alice_token = subprocess.run(
        [vre_bin, "token", "alice", "--data", str(data)], check=True, capture_output=True, text=True
    ).stdout.strip()
    with vre.Client(url, token=alice_token) as client:
        did = f"{client.datalake.my_scope()}:hub-{uuid.uuid4().hex[:8]}/note.txt"
        client.datalake.upload(b"hello from the Data Lake\n", did)

    folder = tmp_path / "hub"
    (folder / "home" / "alice").mkdir(parents=True)
    token_file = folder / "home" / "alice" / ".bearer-token"
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    service_token = secrets.token_hex(16)
    (folder / "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            vre=vre_bin, data=str(data), port=port, hub_port=hub_port, folder=folder,
            bin=HUB_VENV, proxy_api_port=proxy_api_port, vre_url=url,
            token_file=str(token_file), service_token=service_token,
        )
    )  # fmt: skip
    env = {
        **os.environ,
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "PATH": f"{HUB_VENV}:{os.environ['PATH']}",
    }
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "VRE_URL"):
        env.pop(name, None)
    log = folder / "hub.log"
    with log.open("w") as out:
        hub = subprocess.Popen(
            [str(HUB_VENV / "jupyterhub"), "-f", str(folder / "jupyterhub_config.py")],
            cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"  # the proxy: what users reach
    api = f"http://127.0.0.1:{hub_port}/hub/api"  # the Hub's own API, for the test's setup
    admin = {"Authorization": f"token {service_token}"}
    try:
        _wait_for(
            "the hub", lambda: httpx.get(f"{base}/hub/api/", timeout=10).status_code == 200,
            within=120, proc=hub, log=log,
        )  # fmt: skip
        created = httpx.post(f"{api}/users/alice", headers=admin, timeout=60)
        assert created.status_code == 201, created.text
        started = httpx.post(f"{api}/users/alice/server", headers=admin, timeout=120)
        assert started.status_code in (201, 202), started.text
        _wait_for(
            "alice's server",
            lambda: httpx.get(f"{api}/users/alice", headers=admin, timeout=30).json()
            .get("servers", {}).get("", {}).get("ready"),
            within=180, proc=hub, log=log,
        )  # fmt: skip
        # the refresher wrote the first token before the server started: private, current
        assert token_file.stat().st_mode & 0o777 == 0o600
        first = token_file.read_text().strip()
        assert first.count(".") == 2  # a JWT

        user_token = httpx.post(
            f"{api}/users/alice/tokens", headers=admin, timeout=30,
            json={"scopes": ["access:servers!user=alice"], "note": "vre test"},
        ).json()["token"]  # fmt: skip
        kernels = httpx.post(
            f"{base}/user/alice/api/kernels", headers={"Authorization": f"token {user_token}"},
            json={"name": "python3"}, timeout=60,
        )  # fmt: skip
        assert kernels.status_code == 201, kernels.text
        kernel = kernels.json()["id"]

        code = textwrap.dedent(f"""
            import hashlib, os
            import vre
            client = vre.Client()
            def sha(text): return hashlib.sha256(text.strip().encode()).hexdigest()[:16]
            def show():
                token = client.session.token()
                print("user", client.me()["username"])
                print("content", client.datalake.read_bytes({did!r}).decode().strip())
                print("token", sha(token))
                print("token in environment", any(token in v for v in os.environ.values()))
            show()
        """)  # fmt: skip
        before = asyncio.run(_execute(base, user_token, kernel, code))
        assert "user alice" in before
        assert "content hello from the Data Lake" in before
        assert "token in environment False" in before
        sha_before = before.split("token ", 1)[1].split()[0]

        # The Hub refreshes the auth state (auth_refresh_age) when the refresher asks, and the
        # refresher replaces the file: wait for a token other than the one the kernel used.
        _wait_for(
            "a refreshed token",
            lambda: token_file.read_text().strip() and _sha(token_file.read_text()) != sha_before,
            within=60, proc=hub, log=log,
        )  # fmt: skip
        after = asyncio.run(_execute(base, user_token, kernel, "show()"))
        assert "user alice" in after
        assert "content hello from the Data Lake" in after
        assert "token in environment False" in after
        sha_after = after.split("token ", 1)[1].split()[0]
        assert sha_after != sha_before  # the same client in the same kernel took the new token
        assert token_file.stat().st_mode & 0o777 == 0o600
    finally:
        _stop(hub)
