"""deploy/jupyterhub: the Helm values keep the token path the refresher needs (auth state,
refresh, the server's scope, one refresher wrapping the server, no token in the environment),
and the single-user Dockerfile passes hadolint."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "deploy" / "jupyterhub"
VALUES = yaml.safe_load((HUB / "values.yaml").read_text())


def test_the_hub_keeps_and_refreshes_iam_tokens() -> None:
    config = VALUES["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == "generic-oauth"
    assert "offline_access" in config["GenericOAuthenticator"]["scope"]  # a refresh token
    auth = config["Authenticator"]
    assert auth["enable_auth_state"] is True
    assert auth["refresh_pre_spawn"] is True
    assert 0 < auth["auth_refresh_age"] <= 900
    assert "client_secret" not in config["GenericOAuthenticator"]  # from a Secret


def test_the_server_may_read_its_users_auth_state() -> None:
    roles = VALUES["hub"]["loadRoles"]
    assert "admin:auth_state!user" in roles["user"]["scopes"]
    assert "admin:auth_state!user" in roles["server"]["scopes"]
    assert "admin:auth_state!user" in VALUES["hub"]["extraConfig"]["vre-server-token"]


def test_one_refresher_wraps_the_server_and_no_token_is_in_the_environment() -> None:
    cmd = VALUES["singleuser"]["cmd"]
    assert cmd[0] == "vre-token-refresher"
    assert cmd[cmd.index("--") + 1 :] == ["jupyterhub-singleuser"]
    env = VALUES["singleuser"]["extraEnv"]
    assert not {"BEARER_TOKEN", "ACCESS_TOKEN", "RUCIO_ACCESS_TOKEN"} & set(env)
    assert env["VRE_URL"].startswith("https://")


def test_the_singleuser_dockerfile_passes_hadolint() -> None:
    hadolint = ROOT / ".venv-tools" / "bin" / "hadolint"
    if not hadolint.exists():
        pytest.skip(".venv-tools is not built (make deps)")
    result = subprocess.run(
        [str(hadolint), str(HUB / "singleuser.Dockerfile")], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    text = (HUB / "singleuser.Dockerfile").read_text()
    assert "COPY --chown=1000:100 clients/python /opt/vre-client" in text
    assert '"/opt/vre-client[all]"' in text  # astropy, pyvo, fsspec with the client
