"""The official REANA validator as a long-lived worker: JSON lines on stdin, answers on stdout.

Runs in the validator environment (``.venv-reana``: reana-commons 0.9.11, jsonschema 3.2), never
in the service's own environment, so it imports nothing from ``vre_workflows``. One request per
line::

    {"id": 1, "op": "validate", "spec": {...}, "parameters": {...} | null, "name": "..." | null}
    {"id": 2, "op": "ping"}

One answer per line, with the same ``id``::

    {"id": 1, "ok": true, "errors": [...], "warnings": [...], "expanded_steps": [...] | null}
    {"id": 1, "ok": false, "error": "why the request itself could not be handled"}

Besides the reana.yaml schema, a serial workflow's steps are checked with reana-commons' own
serial step schema (``serial_workflow_schema``: memory limits, uids, compute backends, …), its
``check_htcondor_max_runtime``, and its compute backend validators (``compute_backends`` in the
request: the backends a deployment offers; by default every backend REANA knows); operational
options (``inputs.options``) with ``validate_operational_options`` — all as ``reana-client
validate`` runs them, but every error is reported, each with its path.

``errors`` holds every critical schema error (the official ``validate_reana_yaml`` raises only
the best match; here each error of the schema's ``iter_errors`` is classified by the official
``_get_schema_validation_warnings``, so "critical or warning" stays REANA's decision).
``warnings`` are REANA's non-critical schema findings (unknown properties) and the parameter
validator's warnings (unused/undefined parameters, dangerous operations). With ``parameters``
given (a submission), a serial workflow's commands are expanded by the official ``serial_load``
and returned as ``expanded_steps``; an expansion failure is an error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from typing import Any

# reana-commons imports pkg_resources, which warns on import; the protocol channel must stay clean.
warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)

_PROTOCOL = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
# Anything a library prints (click.secho in serial_load, ...) goes to stderr, not the protocol.
os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
sys.stdout = sys.stderr

from jsonschema.validators import validator_for  # noqa: E402
from reana_commons.config import (  # noqa: E402
    HTCONDOR_JOB_FLAVOURS,
    reana_yaml_schema_file_path,
)
from reana_commons.errors import REANAValidationError  # noqa: E402
from reana_commons.serial import (  # noqa: E402
    check_htcondor_max_runtime,
    serial_load,
    serial_workflow_schema,
)
from reana_commons.validation.compute_backends import (  # noqa: E402
    ComputeBackendValidatorSerial,
    build_compute_backends_validator,
)
from reana_commons.validation.operational_options import (  # noqa: E402
    validate_operational_options,
)
from reana_commons.validation.parameters import build_parameters_validator  # noqa: E402
from reana_commons.validation.utils import (  # noqa: E402
    _get_schema_validation_warnings,
    validate_workflow_name,
)

with open(reana_yaml_schema_file_path, encoding="utf-8") as _schema_file:
    _SCHEMA = json.load(_schema_file)
_VALIDATOR_CLASS = validator_for(_SCHEMA)
_VALIDATOR_CLASS.check_schema(_SCHEMA)
_VALIDATOR = _VALIDATOR_CLASS(_SCHEMA)
_SERIAL_VALIDATOR = validator_for(serial_workflow_schema)(serial_workflow_schema)
# Every compute backend REANA knows (the serial step schema's enum).
REANA_COMPUTE_BACKENDS = list(
    serial_workflow_schema["properties"]["steps"]["items"]["properties"]["compute_backend"]["enum"]
)


def _error_entry(error: Any, prefix: list[Any] | None = None) -> dict[str, Any]:
    message = str(error.message)
    context = [str(sub.message) for sub in (error.context or [])]
    if context:
        # anyOf/oneOf: say what each alternative wanted, not only "is not valid under any".
        message += " (" + "; ".join(dict.fromkeys(context)) + ")"
    entry: dict[str, Any] = {
        "path": [*(prefix or []), *error.absolute_path],
        "message": message,
        "validator": str(error.validator),
        "schema_path": [str(p) for p in error.absolute_schema_path],
    }
    if error.validator == "type" and isinstance(error.instance, str):
        entry["text"] = error.instance[:200]
        entry["expected"] = error.validator_value
    if error.instance is None:
        # An empty YAML key ("files:") is null: the service words this for a person.
        entry["null"] = True
        entry["expected"] = error.validator_value if error.validator == "type" else None
    return entry


def _serial_step_errors(spec: dict[str, Any], backends: list[str]) -> list[dict[str, Any]]:
    """reana-commons' serial checks (serial_load's schema and htcondor check, compute backends)."""
    workflow = spec.get("workflow")
    if not isinstance(workflow, dict) or workflow.get("type") != "serial":
        return []
    specification = workflow.get("specification")
    if not isinstance(specification, dict):
        return []  # the reana.yaml schema already says why
    prefix = ["workflow", "specification"]
    errors = [
        _error_entry(e, prefix)
        for e in sorted(
            _SERIAL_VALIDATOR.iter_errors(specification), key=lambda e: list(map(str, e.path))
        )
    ]
    steps = specification.get("steps")
    if not isinstance(steps, list):
        return errors
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        runtime = step.get("htcondor_max_runtime")
        if (
            isinstance(runtime, str)
            and runtime
            and not check_htcondor_max_runtime({"steps": [step]})
        ):
            flavours = sorted(HTCONDOR_JOB_FLAVOURS, key=HTCONDOR_JOB_FLAVOURS.__getitem__)
            errors.append(
                {
                    "path": [*prefix, "steps", index, "htcondor_max_runtime"],
                    "message": f"{runtime!r} is not a valid input for htcondor_max_runtime: give a "
                    'number of seconds as a string (e.g. "3600") or one of the job flavours '
                    + ", ".join(flavours),
                    "validator": "htcondor_max_runtime",
                }
            )
        backend = step.get("compute_backend")
        if isinstance(backend, str) and backend in REANA_COMPUTE_BACKENDS:
            try:
                ComputeBackendValidatorSerial(
                    workflow_steps=[step], supported_backends=backends
                ).validate()
            except REANAValidationError as exc:
                errors.append(
                    {
                        "path": [*prefix, "steps", index, "compute_backend"],
                        "message": str(exc.message),
                        "validator": "compute_backend",
                    }
                )
    return errors


def _compute_backend_errors(spec: dict[str, Any], backends: list[str]) -> list[dict[str, Any]]:
    """Compute backends of a loaded cwl/yadage/snakemake specification (REANA's validators)."""
    workflow = spec.get("workflow")
    if not isinstance(workflow, dict) or workflow.get("type") == "serial":
        return []
    if not isinstance(workflow.get("specification"), dict):
        return []
    try:
        validator = build_compute_backends_validator(spec, backends)
        if validator is not None:
            validator.validate()
    except REANAValidationError as exc:
        return [
            {
                "path": ["workflow", "specification"],
                "message": str(exc.message),
                "validator": "compute_backend",
            }
        ]
    except (KeyError, TypeError, AttributeError):
        return []  # a malformed engine specification: the engine's loader says why
    return []


def _options_errors(spec: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = spec.get("inputs")
    if not isinstance(inputs, dict) or "options" not in inputs:
        return []
    workflow = spec.get("workflow")
    kind = workflow.get("type") if isinstance(workflow, dict) else None
    try:
        validate_operational_options(kind, inputs["options"])
    except REANAValidationError as exc:
        message = str(exc.message).replace("==> ERROR: ", "")
        return [{"path": ["inputs", "options"], "message": message, "validator": "options"}]
    return []


def _schema_findings(spec: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    errors: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    for error in sorted(_VALIDATOR.iter_errors(spec), key=lambda e: list(map(str, e.path))):
        try:
            classified = _get_schema_validation_warnings([error])
        except Exception:  # the official function raises for a critical error
            errors.append(_error_entry(error))
            continue
        for kind, items in classified.items():
            for item in items:
                path = item.get("path", "")
                entry = {
                    "type": kind,
                    "path": [p for p in str(path).split(".") if p] if path else [],
                }
                if "property" in item:
                    entry["message"] = f"unknown property {item['property']!r} (ignored by REANA)"
                    entry["property"] = item["property"]
                else:
                    entry["message"] = str(item.get("message", ""))
                findings.append(entry)
    return errors, findings


def _parameter_warnings(spec: dict[str, Any]) -> list[dict[str, Any]]:
    workflow = spec.get("workflow", {})
    kind = workflow.get("type")
    if kind == "cwl":
        # The official CWL check shells out to cwltool and exits the process on failure:
        # the service runs cwltool itself when the workflow files are at hand.
        return []
    if kind in ("yadage", "snakemake") and "specification" not in workflow:
        return []
    try:
        validator = build_parameters_validator(spec)
        validator.validate_parameters()
    except Exception as exc:  # a malformed engine spec: the schema errors say why
        return [{"type": "parameters", "message": f"parameter checks skipped: {exc}"}]
    out = []
    for group in ("operations_warnings", "reana_params_warnings", "workflow_params_warnings"):
        for item in getattr(validator, group, []):
            out.append({"type": group.replace("_warnings", ""), "message": item["message"]})
    return out


def _expand(spec: dict[str, Any], parameters: dict[str, Any]) -> list[dict[str, Any]]:
    specification = spec["workflow"]["specification"]
    expanded = serial_load(None, specification, parameters=parameters)
    return list(expanded["steps"])


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request."""
    op = request.get("op")
    if op == "ping":
        return {"ok": True}
    if op != "validate":
        return {"ok": False, "error": f"unknown op {op!r}"}
    spec = request.get("spec")
    errors, findings = _schema_findings(spec)
    if isinstance(spec, dict):
        backends = request.get("compute_backends") or REANA_COMPUTE_BACKENDS
        errors += _options_errors(spec)
        errors += _serial_step_errors(spec, backends)
        errors += _compute_backend_errors(spec, backends)
        # The reana.yaml schema and the serial step schema overlap (commands, environment):
        # one error per place and rule.
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for error in errors:
            unique.setdefault((json.dumps(error["path"]), error["validator"]), error)
        errors = list(unique.values())
    name = request.get("name")
    if name:
        try:
            validate_workflow_name(name)
        except ValueError as exc:
            errors.append({"path": ["name"], "message": str(exc), "validator": "workflow_name"})
    result: dict[str, Any] = {"ok": True, "errors": errors, "warnings": findings}
    if errors or not isinstance(spec, dict):
        return result
    result["warnings"] = findings + _parameter_warnings(spec)
    parameters = request.get("parameters")
    workflow = spec["workflow"]
    if parameters is not None and workflow.get("type") == "serial" and "specification" in workflow:
        try:
            result["expanded_steps"] = _expand(spec, parameters)
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc)
            result["errors"].append(
                {
                    "path": ["workflow", "specification", "steps"],
                    "message": str(message),
                    "validator": "parameters",
                }
            )
    return result


def main() -> None:
    """Serve requests until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            answer = handle(request)
        except Exception as exc:  # never die on one bad request
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answer["id"] = request_id
        _PROTOCOL.write(json.dumps(answer, default=str) + "\n")
        _PROTOCOL.flush()


if __name__ == "__main__":
    main()
