"""POST /validate as reana-client validate: REANA's step checks, the workflow's files, archives."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from typing import Any

import httpx
import pytest

from services.workflows.tests.support.helpers import Harness
from services.workflows.tests.support.reana_cases import (
    CASES,
    CWL_TOOL,
    CWL_WORKFLOW,
    HELLO_PY,
    NAMES,
    Case,
)
from vre_common.errors import InvalidInputError, PayloadTooLargeError
from vre_workflows.validation.files import read_archive


def _multipart(spec: str, files: dict[str, str]) -> list[tuple[str, Any]]:
    parts: list[tuple[str, Any]] = [("spec", ("reana.yaml", spec, "application/yaml"))]
    parts += [("files", (path, text.encode(), "text/plain")) for path, text in files.items()]
    return parts


async def _validate_case(wf: Harness, case: Case) -> httpx.Response:
    if case.files:
        return await wf.client.post(
            "/validate", files=_multipart(case.reana_yaml, case.files), headers=wf.headers()
        )
    return await wf.client.post(
        "/validate",
        content=case.reana_yaml,
        headers={**wf.headers(), "Content-Type": "application/yaml"},
    )


def _tar(files: dict[str, bytes], *, prefix: str = "", gz: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(prefix + path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# Cases whose workflow files need an engine's loader run in test_workflows_validation_official
# (next to reana-client); here the ones the worker answers in milliseconds.
QUICK = [c for c in CASES if "type: serial" in c.reana_yaml]


@pytest.mark.parametrize("case", QUICK, ids=lambda c: c.name)
async def test_real_world_shapes(wf: Harness, case: Case) -> None:
    response = await _validate_case(wf, case)
    if case.valid:
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["valid"] is True
        assert report["unchecked"] == [] or all(
            u["field"].startswith("inputs.") for u in report["unchecked"]
        ), report["unchecked"]
        if report["workflow_type"] != "serial":
            assert report["checked_files"], report
        return
    assert response.status_code == 422, response.text
    problem = response.json()
    paths = {e["path"] for e in problem["errors"]}
    assert paths == set(case.error_paths), problem["errors"]
    for error in problem["errors"]:
        assert error["line"] >= 1, error
        assert error["column"] >= 1, error


async def test_reana_step_checks_each_with_path_line_and_column(wf: Harness) -> None:
    (case,) = [c for c in CASES if c.name == "serial-bad-step-fields"]
    response = await _validate_case(wf, case)
    assert response.status_code == 422
    errors = {e["path"].rsplit(".", 1)[-1]: e for e in response.json()["errors"]}
    assert (
        errors["kubernetes_memory_limit"]["line"],
        errors["kubernetes_memory_limit"]["column"],
    ) == (10, 34)
    assert "does not match" in errors["kubernetes_memory_limit"]["msg"]
    assert errors["kubernetes_uid"]["line"] == 11
    assert "'1000' is not of type 'integer'" in errors["kubernetes_uid"]["msg"]
    assert errors["htcondor_max_runtime"]["line"] == 12
    assert "espresso" in errors["htcondor_max_runtime"]["msg"]
    assert errors["htcondor_max_runtime"]["type"] == "htcondor_max_runtime"


async def test_compute_backends_are_reanas(wf: Harness) -> None:
    spec = """\
workflow:
  type: serial
  specification:
    steps:
      - environment: docker.io/library/python:3.11-slim
        compute_backend: htcondor
        commands: [echo hi]
"""
    response = await wf.client.post(
        "/validate", content=spec, headers={**wf.headers(), "Content-Type": "application/yaml"}
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["path"] == "workflow.specification.steps.0.compute_backend"
    assert error["line"] == 6
    assert "htcondorcern" in error["msg"]  # the allowed values are named

    snakefile = (
        "rule a:\n    output: 'x'\n    resources: compute_backend='nowhere'\n    shell: 'touch x'\n"
    )
    response = await wf.client.post(
        "/validate",
        files=_multipart(
            "workflow:\n  type: snakemake\n  file: Snakefile\n", {"Snakefile": snakefile}
        ),
        headers=wf.headers(),
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["type"] == "compute_backend"
    assert 'Compute backend "nowhere" found in step "a" is not supported' in error["msg"]
    assert (error["path"], error["line"]) == ("workflow.file", 3)


async def test_date_parameter_is_located_and_merge_keys_accepted(wf: Harness) -> None:
    (dated,) = [c for c in CASES if c.name == "serial-date-parameter"]
    response = await _validate_case(wf, dated)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["line"], error["column"]) == (3, 12)
    assert "quote it ('2021-03-04')" in error["msg"]

    quoted = dated.reana_yaml.replace("2021-03-04", "'2021-03-04'")
    response = await wf.client.post(
        "/validate", content=quoted, headers={**wf.headers(), "Content-Type": "application/yaml"}
    )
    assert response.status_code == 200, response.text

    merged = """\
base: &base
  environment: docker.io/library/python:3.11-slim
  kubernetes_memory_limit: 8 gigabytes
workflow:
  type: serial
  specification:
    steps:
      - <<: *base
        name: a
        commands: [echo a]
      - <<: *base
        name: b
        kubernetes_memory_limit: 1Gi
        commands: [echo b]
"""
    response = await wf.client.post(
        "/validate", content=merged, headers={**wf.headers(), "Content-Type": "application/yaml"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    # Only step a inherits the bad limit; its line is where the anchor's value is written.
    (error,) = problem["errors"]
    assert error["path"] == "workflow.specification.steps.0.kubernetes_memory_limit"
    assert (error["line"], error["column"]) == (3, 28)
    assert any("base" in w["message"] for w in problem["warnings"])  # unknown key, as REANA

    duplicated = "workflow:\n  type: serial\n  type: cwl\n"
    response = await wf.client.post(
        "/validate", content=duplicated, headers={**wf.headers(), "Content-Type": "text/yaml"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["line"] == 3


async def test_empty_key_is_worded_for_a_person(wf: Harness) -> None:
    (case,) = [c for c in CASES if c.name == "empty-files"]
    response = await _validate_case(wf, case)
    (error,) = response.json()["errors"]
    assert "None is not" not in error["msg"]
    assert error["msg"].startswith("'files' is empty")
    assert "a list" in error["msg"]
    assert (error["line"], error["column"]) == (8, 9)


async def test_without_files_the_answer_says_what_was_not_checked(wf: Harness) -> None:
    (case,) = [c for c in CASES if c.name == "cwl-tool-and-job"]
    response = await wf.client.post(
        "/validate",
        content=case.reana_yaml,
        headers={**wf.headers(), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is True
    assert report["checked_files"] == []
    unchecked = {u["path"]: u for u in report["unchecked"]}
    assert unchecked["workflow/cwl/hello.cwl"]["field"] == "workflow.file"
    assert "not sent" in unchecked["workflow/cwl/hello.cwl"]["reason"]
    assert unchecked["workflow/cwl/job.yml"]["field"] == "inputs.parameters.input"
    assert unchecked["code/hello.py"]["field"] == "inputs.files"
    assert any(w["type"] == "unchecked" and w["line"] == 9 for w in report["warnings"])


async def test_tar_and_zip_of_the_analysis_directory(wf: Harness) -> None:
    (case,) = [c for c in CASES if c.name == "yadage-stages"]
    members = {"reana.yaml": case.reana_yaml.encode()} | {
        p: t.encode() for p, t in case.files.items()
    }
    # A repository archive: everything under one top folder.
    tar = _tar(members, prefix="analysis-main/")
    response = await wf.client.post(
        "/validate", content=tar, headers={**wf.headers(), "Content-Type": "application/gzip"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["checked_files"] == ["workflow/yadage/workflow.yaml"]

    (serial,) = [c for c in CASES if c.name == "serial-yml-directories"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("reana.yml", serial.reana_yaml)
        for path, text in serial.files.items():
            archive.writestr(path, text)
    response = await wf.client.post(
        "/validate",
        files=[("archive", ("analysis.zip", buffer.getvalue(), "application/zip"))],
        headers=wf.headers(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["unchecked"] == []  # data/ came in the zip

    response = await wf.client.post(
        "/validate",
        content=_tar({"code/a.py": b"1"}),
        headers={**wf.headers(), "Content-Type": "application/gzip"},
    )
    assert response.status_code == 422
    assert "no reana.yaml" in response.json()["detail"]


async def test_archive_members_that_leave_the_directory_are_refused(wf: Harness) -> None:
    spec = b"workflow:\n  type: serial\n  specification:\n    steps: []\n"
    response = await wf.client.post(
        "/validate",
        content=_tar({"reana.yaml": spec, "../escape.txt": b"x"}),
        headers={**wf.headers(), "Content-Type": "application/x-gzip"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["archive", "../escape.txt"]

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("reana.yaml")
        info.size = len(spec)
        archive.addfile(info, io.BytesIO(spec))
        link = tarfile.TarInfo("passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    response = await wf.client.post(
        "/validate",
        content=buffer.getvalue(),
        headers={**wf.headers(), "Content-Type": "application/x-tar"},
    )
    assert response.status_code == 422
    assert "is a link" in response.json()["detail"]

    response = await wf.client.post(
        "/validate",
        content=b"not an archive",
        headers={**wf.headers(), "Content-Type": "application/zip"},
    )
    assert response.status_code == 422
    assert "cannot be read as tar" in response.json()["detail"]

    response = await wf.client.post(
        "/validate",
        files=[
            ("spec", ("reana.yaml", spec, "application/yaml")),
            ("files", ("/etc/hosts", b"x", "text/plain")),
        ],
        headers=wf.headers(),
    )
    assert response.status_code == 422
    assert "absolute paths are not allowed" in response.json()["detail"]


def test_archive_limits() -> None:
    files = {f"f{i}.txt": b"x" for i in range(5)}
    with pytest.raises(PayloadTooLargeError, match="more than 3 members"):
        read_archive(io.BytesIO(_tar(files)), max_members=3)
    # A member that holds more than the limit, whatever its header says.
    bomb = {"reana.yaml": b"w", "big.bin": b"\0" * 200_000}
    with pytest.raises(PayloadTooLargeError, match="unpacks to more than"):
        read_archive(io.BytesIO(_tar(bomb)), max_bytes=100_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\0" * 500_000)
    with pytest.raises(PayloadTooLargeError):
        read_archive(io.BytesIO(buffer.getvalue()), max_bytes=100_000)
    with pytest.raises(InvalidInputError, match="absolute"):
        read_archive(io.BytesIO(_tar({"/abs.txt": b"x"})))
    unpacked = read_archive(io.BytesIO(_tar({"./a/b.txt": b"hi", "./reana.yaml": b"w"})))
    assert unpacked.paths() == {"a/b.txt", "reana.yaml"}
    unpacked.close()


async def test_run_files_from_an_archive_reach_the_workspace(wf: Harness) -> None:
    spec = """\
inputs:
  files: [code/hello.py, data/names.txt]
workflow:
  type: serial
  specification:
    steps:
      - name: greet
        environment: docker.io/library/python:3.11-slim
        commands:
          - python3 code/hello.py data/names.txt > out.txt && cat data/names.txt >> out.txt
outputs:
  files: [out.txt]
"""
    archive = _tar(
        {
            "reana.yaml": spec.encode(),
            "code/hello.py": HELLO_PY.encode(),
            "data/names.txt": NAMES.encode(),
        },
        prefix="analysis/",
    )
    response = await wf.client.post(
        "/runs",
        files=[
            ("run", (None, json.dumps({"name": "from-archive"}))),
            ("archive", ("analysis.tar.gz", archive, "application/gzip")),
        ],
        headers=wf.headers(),
    )
    assert response.status_code == 201, response.text
    run = response.json()
    paths = {i["path"] for i in run["inputs"] if i["kind"] == "upload"}
    assert {"code/hello.py", "data/names.txt", "reana.yaml"} <= paths
    done = await wf.wait(run["id"])
    assert done["status"] == "finished", done
    log = await wf.client.get(f"/runs/{run['id']}/outputs", headers=wf.headers())
    assert log.status_code == 200

    # A cwl run whose files fail REANA's loader is refused before it is accepted.
    bad = {
        "workflow/hello.cwl": CWL_WORKFLOW.replace("script: File", "script: Fiel"),
        "workflow/greet.tool": CWL_TOOL,
    }
    response = await wf.client.post(
        "/runs",
        files=[
            (
                "run",
                (
                    None,
                    json.dumps({"spec": "workflow:\n  type: cwl\n  file: workflow/hello.cwl\n"}),
                ),
            ),
            *[("files", (p, t.encode(), "text/plain")) for p, t in bad.items()],
        ],
        headers=wf.headers(),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["type"] == "cwl.load"


async def test_unsupported_media_type_lists_what_is_accepted(wf: Harness) -> None:
    response = await wf.client.post(
        "/validate", content=b"<html/>", headers={**wf.headers(), "Content-Type": "text/html"}
    )
    assert response.status_code == 415
    problem = response.json()
    assert {"application/yaml", "multipart/form-data", "application/zip"} <= set(
        problem["accepted"]
    )
    assert "application/gzip" in response.headers["accept-post"]
