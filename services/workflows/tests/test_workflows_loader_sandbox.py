"""REANA's loaders run the user's code (a Snakefile is Python): in the sandbox it sees nothing
of the service — not its environment, not its files, not the network.

The Snakefile below tries, while it is loaded by /validate, to read the service's environment
through /proc, a file beside the service's data, and to open a connection; it reports what it
got in a rule name the loader's answer carries back. Without bubblewrap the files are reported
unchecked, with the reason — never loaded unsandboxed beside the service's secrets.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from services.workflows.tests.support.helpers import Harness
from services.workflows.tests.test_workflows_validation_reana import _multipart
from vre_workflows.config import WorkflowsSettings
from vre_workflows.factory import validation_service
from vre_workflows.validation.worker_client import ReanaValidatorWorker

PROBE = """\
import os, socket
seen = []
try:
    seen.append("environ:" + open("/proc/%d/environ" % os.getppid()).read()[:200])
except OSError as e:
    seen.append("environ-denied")
try:
    seen.append("file:" + open({secret!r}).read())
except OSError:
    seen.append("file-denied")
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    seen.append("network-open")
except OSError:
    seen.append("network-denied")
raise ValueError("PROBE " + " ".join(seen))

rule a:
    output: "x"
    shell: "touch x"
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
async def test_the_users_code_sees_nothing_of_the_service(
    wf: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "credentials.key"
    secret.write_text("THE-SERVICE-KEY")
    monkeypatch.setenv("VRE_TEST_SECRET", "THE-SERVICE-ENV")
    port = int(os.environ.get("VRE_PROBE_PORT", "9"))  # any port: the namespace has no network
    snakefile = PROBE.format(secret=str(secret), port=port)
    response = await wf.client.post(
        "/validate",
        files=_multipart(
            "workflow:\n  type: snakemake\n  file: Snakefile\n", {"Snakefile": snakefile}
        ),
        headers=wf.headers(),
    )
    text = response.text
    assert "PROBE" in text, text  # the Snakefile ran (and reported)
    assert "THE-SERVICE-KEY" not in text
    assert "THE-SERVICE-ENV" not in text
    assert "file-denied" in text
    assert "network-denied" in text


async def test_without_a_sandbox_specifications_are_reported_unchecked(tmp_path: Path) -> None:
    worker = ReanaValidatorWorker.__new__(ReanaValidatorWorker)  # not started: never asked
    off = validation_service(WorkflowsSettings(spec_loading="off", data_dir=tmp_path), worker)
    assert off._loaders_off is not None
    assert "spec_loading=off" in off._loaders_off
