"""checkov's general Kubernetes policies over every site as Flux would apply it.

The project-specific rules (probes for their purpose, autoscalers owning the replica count,
budgets that allow drains, no state on emptyDir, metrics off the public port, secrets from
ExternalSecrets) are tests/deploy/test_k8s.py; this runs the community's rule set
(privileges, capabilities, host namespaces, resource limits, image digests, service
accounts, …) on the same rendered objects. checkov lives in its own environment
(`.venv-checkov`, requirements/checkov.txt) and runs with --skip-download: nothing is fetched.

A finding fails the test unless its check is listed in ACCEPTED with the reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

pytestmark = pytest.mark.slow  # checkov takes ~20 s

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
SITES = ("example", "example-dev")
ACCEPTED = {
    # The services read their settings from environment variables (pydantic-settings); the
    # values come from Secrets made by External Secrets and never appear in a manifest.
    # Mounting them as files would need a file-per-setting reader in every service.
    "CKV_K8S_35": "secrets as environment variables: the settings are read from the environment",
}


def test_checkov_finds_nothing_but_the_accepted(kubectl: str, tmp_path: Path) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make .venv-checkov/.stamp` (part of make test)")
    files = []
    for site in SITES:
        for part in ("", "/migrations", "/secrets"):
            rendered = subprocess.run(
                [kubectl, "kustomize", str(REPO / "k8s" / "sites" / f"{site}{part}")],
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            path = tmp_path / f"{site}{part.replace('/', '-')}.yaml"
            path.write_text(rendered.stdout)
            files += ["-f", str(path)]
    result = subprocess.run(
        [str(CHECKOV), *files, "--framework", "kubernetes", "--output", "json", "--quiet",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 500  # the rule set really ran over the objects
    findings = [f for r in reports for f in r["results"]["failed_checks"]]
    unexpected = [
        f"{f['check_id']} {f['check_name']} ({f['resource']})"
        for f in findings
        if f["check_id"] not in ACCEPTED
    ]
    assert unexpected == []
    # an accepted check that no longer fires is taken off the list
    assert {f["check_id"] for f in findings} == set(ACCEPTED)
