"""Steps never run with the service's identity where it holds secrets.

A step on the host runs as the workflows service: it could read the service's environment
(/proc/<ppid>/environ) and files — the database URL, the key that decrypts every user's REANA
token, the provenance client's secret. Host execution is therefore for the embedded
single-user mode only; the settings refuse it beside any such secret, at start.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from vre_common.settings import ClientCredentialsSettings, ProvenanceSettings
from vre_workflows.config import LocalExecutorSettings, ReanaSettings, WorkflowsSettings

HOST = LocalExecutorSettings(allow_host_execution=True)


def test_the_embedded_single_user_mode_may_run_steps_on_the_host() -> None:
    assert WorkflowsSettings(local=HOST).local.allow_host_execution is True


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"gateway_url": "http://vre-gateway:8000"}, "gateway_url"),
        ({"reana": ReanaSettings(credentials_key=SecretStr("k" * 44))}, "credentials_key"),
        ({"provenance": ProvenanceSettings(service_token=SecretStr("t"))}, "service_token"),
        (
            {
                "provenance": ProvenanceSettings(
                    client=ClientCredentialsSettings(
                        token_url="https://iam.example.org/token",
                        client_id="vre-services",
                        client_secret=SecretStr("s"),
                    )
                )
            },
            "provenance.client",
        ),
    ],
)
def test_refused_beside_a_secret(changes: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        WorkflowsSettings(local=HOST, **changes)  # type: ignore[arg-type]
    message = str(refused.value)
    assert "allow_host_execution is refused" in message
    assert named in message
    assert "containers" in message  # what to do instead


def test_refused_from_the_environment_as_deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRE_WORKFLOWS_LOCAL__ALLOW_HOST_EXECUTION", "true")
    monkeypatch.setenv("VRE_WORKFLOWS_GATEWAY_URL", "http://vre-gateway:8000")
    with pytest.raises(ValidationError, match="allow_host_execution is refused"):
        WorkflowsSettings()
    monkeypatch.delenv("VRE_WORKFLOWS_LOCAL__ALLOW_HOST_EXECUTION")
    assert WorkflowsSettings().local.allow_host_execution is False  # the default: containers
