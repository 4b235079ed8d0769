"""The official REANA validator as a long-lived worker: JSON lines on stdin, answers on stdout.

Runs in the validator environment (``.venv-reana``: reana-commons 0.9.11, jsonschema 3.2), never
in the service's own environment, so it imports nothing from ``vre_workflows``. One request per
line::

    {"id": 1, "op": "validate", "spec": {...}, "parameters": {...} | null, "name": "..." | null}
    {"id": 2, "op": "ping"}

One answer per line, with the same ``id``::

    {"id": 1, "ok": true, "errors": [...], "warnings": [...], "expanded_steps": [...] | null}
    {"id": 1, "ok": false, "error": "why the request itself could not be handled"}

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
from reana_commons.config import reana_yaml_schema_file_path  # noqa: E402
from reana_commons.serial import serial_load  # noqa: E402
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


def _error_entry(error: Any) -> dict[str, Any]:
    message = str(error.message)
    context = [str(sub.message) for sub in (error.context or [])]
    if context:
        # anyOf/oneOf: say what each alternative wanted, not only "is not valid under any".
        message += " (" + "; ".join(dict.fromkeys(context)) + ")"
    return {
        "path": list(error.absolute_path),
        "message": message,
        "validator": str(error.validator),
        "schema_path": [str(p) for p in error.absolute_schema_path],
    }


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
