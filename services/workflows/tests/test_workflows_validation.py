"""POST /validate and validation on submission: every error, with locations, and warnings."""

from __future__ import annotations

import json

from services.workflows.tests.support.helpers import Harness, serial_spec, step

VALID = """\
version: 0.9.4
inputs:
  parameters:
    n: 3
    unused: 1
workflow:
  type: serial
  specification:
    steps:
      - name: count
        environment: docker.io/library/debian:bookworm-slim
        commands:
          - seq ${n} > numbers.txt
          - sudo true
outputs:
  files:
    - numbers.txt
"""

BROKEN = """\
inputs:
  parameters:
    n: 3
  bogus: 1
workflow:
  type: serial
  specification:
    steps:
      - name: first
        commands: []
      - name: second
        environment: 42
        commands:
          - echo hi
        kubernetes_job_timeout: soon
outputs:
  files: out.txt
"""


async def test_valid_spec_gives_warnings(wf: Harness) -> None:
    response = await wf.client.post(
        "/validate", content=VALID, headers={**wf.headers(), "Content-Type": "application/yaml"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is True
    assert report["workflow_type"] == "serial"
    assert len(report["spec_sha256"]) == 64
    messages = [w["message"] for w in report["warnings"]]
    assert any('"unused"' in m and "does not seem to be used" in m for m in messages)
    assert any('Operation "sudo" found in step "count"' in m for m in messages)


async def test_every_error_is_listed_with_its_location(wf: Harness) -> None:
    response = await wf.client.post(
        "/validate", content=BROKEN, headers={**wf.headers(), "Content-Type": "text/yaml"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/invalid-workflow-specification")
    errors = {(e["path"], e["type"]): e for e in problem["errors"]}
    # minItems on commands, environment missing on step 0, environment type on step 1,
    # timeout type on step 1, outputs.files type: five errors, each located.
    expected = {
        ("workflow.specification.steps.0.commands", "schema.minItems"): 10,
        ("workflow.specification.steps.0", "schema.required"): 9,
        ("workflow.specification.steps.1.environment", "schema.type"): 12,
        ("workflow.specification.steps.1.kubernetes_job_timeout", "schema.type"): 15,
        ("outputs.files", "schema.type"): 17,
    }
    for key, line in expected.items():
        assert key in errors, (key, list(errors))
        assert errors[key]["line"] == line, (key, errors[key])
        assert errors[key]["loc"][0] == "spec"
    assert len(problem["errors"]) == len(expected)
    # REANA treats unknown properties as warnings, not errors.
    assert any(w.get("property") == "bogus" or "bogus" in w["message"] for w in problem["warnings"])
    assert "5 error(s)" in problem["detail"]


async def test_json_body_and_syntax_errors(wf: Harness) -> None:
    spec = serial_spec([step("a", "echo hi")])
    ok = await wf.client.post("/validate", json=spec, headers=wf.headers())
    assert ok.status_code == 200, ok.text

    bad = await wf.client.post(
        "/validate",
        content="workflow:\n  type: serial\n   broken: [\n",
        headers={**wf.headers(), "Content-Type": "application/yaml"},
    )
    assert bad.status_code == 422
    error = bad.json()["errors"][0]
    assert error["type"] == "syntax"
    assert error["line"] == 3

    dup = await wf.client.post(
        "/validate",
        content="workflow:\n  type: serial\n  type: cwl\n  file: x.cwl\n",
        headers={**wf.headers(), "Content-Type": "application/yaml"},
    )
    assert dup.status_code == 422
    assert "duplicate key" in dup.json()["errors"][0]["msg"]

    not_mapping = await wf.client.post(
        "/validate", content="- a\n- b\n", headers={**wf.headers(), "Content-Type": "text/yaml"}
    )
    assert not_mapping.status_code == 422


async def test_paths_leaving_the_workspace_are_refused(wf: Harness) -> None:
    spec = serial_spec(
        [step("a", "echo hi")],
        outputs=["../escape.txt", "/etc/passwd", "ok/fine.txt"],
        directories=["results/../../up"],
    )
    spec["inputs"]["files"] = ["/abs/input.csv"]
    response = await wf.client.post("/validate", json=spec, headers=wf.headers())
    assert response.status_code == 422
    paths = {e["path"]: e["msg"] for e in response.json()["errors"] if e["type"] == "path"}
    assert set(paths) == {
        "outputs.files.0",
        "outputs.files.1",
        "outputs.directories.0",
        "inputs.files.0",
    }
    assert "'..'" in paths["outputs.files.0"]
    assert "absolute" in paths["outputs.files.1"]


async def test_yadage_is_refused_for_the_local_backend(wf: Harness) -> None:
    spec = {"workflow": {"type": "yadage", "file": "workflow.yml"}}
    anywhere = await wf.client.post("/validate", json=spec, headers=wf.headers())
    assert anywhere.status_code == 200, anywhere.text
    local = await wf.client.post("/validate?backend=local", json=spec, headers=wf.headers())
    assert local.status_code == 422
    assert local.json()["errors"][0]["path"] == "workflow.type"
    submitted = await wf.submit(expect=422, spec=spec, backend="local")
    assert "yadage" in submitted["detail"]


async def test_media_type_and_auth(wf: Harness) -> None:
    no_token = await wf.client.post("/validate", content=VALID)
    assert no_token.status_code == 401
    wrong = await wf.client.post(
        "/validate", content=b"x", headers={**wf.headers(), "Content-Type": "image/png"}
    )
    assert wrong.status_code == 415
    empty = await wf.client.post(
        "/validate", content=b"  ", headers={**wf.headers(), "Content-Type": "text/yaml"}
    )
    assert empty.status_code == 422


async def test_submission_is_validated_the_same_way(wf: Harness) -> None:
    problem = await wf.submit(expect=422, spec=BROKEN)
    assert len(problem["errors"]) == 5
    assert all("line" in e for e in problem["errors"])

    unknown = await wf.submit(
        expect=422,
        spec=serial_spec([step("a", "echo ${n}")], parameters={"n": 1}),
        parameters={"m": 2},
    )
    assert unknown["errors"][0]["loc"] == ["parameters", "m"]

    shell_variable = await wf.submit(expect=422, spec=serial_spec([step("a", "echo $HOME")]))
    assert "'HOME'" in shell_variable["errors"][0]["msg"]

    bad_name = await wf.submit(expect=422, spec=serial_spec([step("a", "true")]), name="a.b")
    assert bad_name["errors"][0]["loc"][:2] == ["body", "name"]

    escaped = await wf.submit(spec=serial_spec([step("a", "echo $$HOME")]))
    assert escaped["steps"][0]["commands"] == ["echo $HOME"]
    await wf.wait(escaped["id"])


async def test_validator_worker_survives_garbage(wf: Harness) -> None:
    worker = wf.factory.worker
    answer = await worker.request({"op": "validate", "spec": {"workflow": json.loads("[]")}})
    assert answer["errors"]
    await worker.ping()
    starts = worker.starts
    assert starts >= 1
