"""The official ``reana-client validate`` next to ours on every minimal real-world case.

reana-client (0.9.6, in ``.venv-reana-client``) runs offline in the case's directory, as a user
runs it in an analysis directory (``REANA_SERVER_URL`` only has to be set); ours gets the same
reana.yaml and files by multipart. Where the two answers differ, ``reana_cases`` says so
(``official_valid``) and docs/validation-corpus.md says why ours is right.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.workflows.tests.support.helpers import Harness
from services.workflows.tests.support.reana_cases import CASES, Case

CLIENT_BIN = Path(
    os.environ.get(
        "VRE_REANA_CLIENT_PYTHON", str(Path(sys.prefix).parent / ".venv-reana-client/bin/python")
    )
).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CLIENT_BIN / "reana-client").exists(),
        reason=f"reana-client is not installed ({CLIENT_BIN}/reana-client missing): build "
        ".venv-reana-client with `make deps`",
    ),
]


def _official(case: Case, folder: Path) -> tuple[bool, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in case.files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (folder / "reana.yaml").write_text(case.reana_yaml)
    env = {
        # Its own cwltool and snakemake first, as in the user's activated environment.
        "PATH": f"{CLIENT_BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "REANA_SERVER_URL": "http://127.0.0.1:9",  # never called by validate
    }
    done = subprocess.run(
        [str(CLIENT_BIN / "reana-client"), "validate", "-f", "reana.yaml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_official_client_next_to_ours(wf: Harness, case: Case, tmp_path: Path) -> None:
    official = asyncio.create_task(asyncio.to_thread(_official, case, tmp_path / "analysis"))
    parts: list[tuple[str, object]] = [("spec", ("reana.yaml", case.reana_yaml, "text/yaml"))]
    parts += [("files", (p, t.encode(), "text/plain")) for p, t in case.files.items()]
    response = await wf.client.post("/validate", files=parts, headers=wf.headers())
    official_valid, output = await official
    assert response.status_code in (200, 422), response.text
    ours = response.json()
    ours_valid = response.status_code == 200
    assert ours_valid is case.valid, ours
    assert official_valid is case.official_valid, output
    if not ours_valid:
        assert {e["path"] for e in ours["errors"]} == set(case.error_paths), ours["errors"]
        assert all(e.get("line") and e.get("column") for e in ours["errors"]), ours["errors"]
        messages = "\n".join(e["msg"] for e in ours["errors"])
        for text in case.error_text:
            assert text in messages, messages
        assert "vre-validate-" not in messages  # the scratch folder is not the user's
    else:
        assert all(u["field"].startswith("inputs.") for u in ours["unchecked"]), ours
        if ours["workflow_type"] != "serial":  # loaded by REANA's loader, as reana-client does
            assert ours["checked_files"], ours
