"""Compare our reana.yaml validation with ``reana-client validate`` on a folder of real analyses.

Usage::

    .venv/bin/python -m services.workflows.tests.support.compare_reana_corpus <folder> [<folder>...]

Each folder is an analysis directory (a repository checkout, or the folder of its reana.yaml);
every ``reana*.yaml`` / ``reana*.yml`` file in it with a ``workflow`` section is validated twice:
by ours (the ValidationService as ``POST /validate`` runs it, with every file of the directory
sent along) and by the official reana-client (``.venv-reana-client``), run offline in that
directory as a user runs it. One line per file: ours, reana-client's, and whether they agree;
``--json <file>`` writes both answers in full. This is how docs/validation-corpus.md was made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from vre_common.errors import VreError
from vre_workflows.services.validation import ValidationService, parse
from vre_workflows.validation.files import WorkflowFiles
from vre_workflows.validation.worker_client import ReanaValidatorWorker

ROOT = Path(sys.prefix).parent
VALIDATOR_PYTHON = ROOT / ".venv-reana" / "bin" / "python"
CLIENT = ROOT / ".venv-reana-client" / "bin" / "reana-client"


def specification_files(folder: Path) -> list[Path]:
    """The reana.yaml files of an analysis directory (those with a workflow section)."""
    found = []
    for path in sorted(folder.rglob("reana*.y*ml")):
        if not path.is_file() or path.suffix not in (".yaml", ".yml"):
            continue
        try:
            document = yaml.safe_load(path.read_bytes())
        except yaml.YAMLError:
            document = None
        if (
            isinstance(document, dict) and "workflow" in document
        ) or b"workflow:" in path.read_bytes():
            found.append(path)
    return found


def official(path: Path) -> tuple[bool | None, str]:
    """reana-client validate, in the file's directory (None: it did not finish)."""
    env = {
        "PATH": f"{CLIENT.parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(path.parent),
        "LANG": "C.UTF-8",
        "REANA_SERVER_URL": "http://127.0.0.1:9",  # validate does not call it
    }
    try:
        done = subprocess.run(
            [str(CLIENT), "validate", "-f", path.name],
            cwd=path.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "timeout"
    lines = (done.stdout + done.stderr).splitlines()
    return done.returncode == 0, "\n".join(x for x in lines if "pkg_resources" not in x)


def directory_files(path: Path) -> WorkflowFiles:
    """Every file of the reana.yaml's directory, as a multipart request would send them."""
    files = WorkflowFiles()
    for item in sorted(path.parent.rglob("*")):
        if item.is_file() and not item.is_symlink() and ".git" not in item.parts:
            relative = item.relative_to(path.parent).as_posix()
            try:
                files.add_file(relative, item, loc=["files", relative])
            except VreError:
                continue
    return files


async def ours(service: ValidationService, path: Path) -> tuple[bool, dict[str, Any]]:
    """Our validation with every file of the reana.yaml's directory sent along."""
    files = await asyncio.to_thread(directory_files, path)
    text = await asyncio.to_thread(path.read_bytes)
    try:
        outcome = await service.validate(parse(text), files=files)
    except VreError as exc:
        return False, {"problem": str(exc), "errors": getattr(exc, "errors", None)}
    return outcome.report.valid, outcome.report.model_dump(exclude_none=True)


async def main() -> None:
    """Compare, one line per file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="write both answers for every file here")
    args = parser.parse_args()
    worker = ReanaValidatorWorker(VALIDATOR_PYTHON)
    service = ValidationService(worker)
    rows = []
    try:
        for folder in args.folders:
            for path in specification_files(folder):
                ours_valid, ours_answer = await ours(service, path)
                client_valid, client_answer = await asyncio.to_thread(official, path)
                agree = "agree" if ours_valid == client_valid else "DISAGREE"
                print(f"{agree:8} ours={ours_valid!s:5} reana-client={client_valid!s:5} {path}")
                rows.append(
                    {
                        "file": str(path),
                        "ours_valid": ours_valid,
                        "ours": ours_answer,
                        "client_valid": client_valid,
                        "client": client_answer,
                    }
                )
    finally:
        await worker.aclose()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
