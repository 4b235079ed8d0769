"""REANA's own loading of a cwl/snakemake/yadage workflow, as ``reana-client validate`` does it.

Runs once per request in the validator environment (``.venv-reana``: reana-commons with its
cwl, snakemake and yadage extras), with the analysis directory as its working directory, and
imports nothing from ``vre_workflows``. Reads one JSON object on stdin::

    {"spec": {...}, "compute_backends": [...] | null, "parameters": {...} | null}

and writes one JSON object on stdout::

    {"ok": true, "errors": [...], "warnings": [...], "loaded": true | false}

The steps are reana-client's (``load_reana_spec`` then ``validate_reana_spec``): the workflow
file through ``load_workflow_spec_from_reana_yaml`` (``cwltool --pack``, snakemake's DAG,
yadage's schema loader), the input parameters file through ``load_input_parameters``, then the
parameter validator (for CWL: ``cwltool --validate --strict``) and the compute backend
validator on the loaded specification. A snakemake workflow without an ``input`` parameters
file gets its parameters (``parameters``, or ``inputs.parameters``) as its config, as REANA's
snakemake engine runs it (reana-client's own check would load the Snakefile without them).
A Snakefile is Python: loading it runs it, as
reana-client does on the user's machine — hence a process of its own, with a timeout and
resource limits set by the caller.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

warnings.filterwarnings("ignore")

_PROTOCOL = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
sys.stdout = sys.stderr
# cwl_load and the CWL parameter check call `cwltool` by name: this environment's own.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

from reana_commons.errors import REANAValidationError  # noqa: E402
from reana_commons.serial import serial_workflow_schema  # noqa: E402
from reana_commons.specification import (  # noqa: E402
    load_input_parameters,
    load_workflow_spec_from_reana_yaml,
)
from reana_commons.validation.compute_backends import (  # noqa: E402
    build_compute_backends_validator,
)
from reana_commons.validation.operational_options import (  # noqa: E402
    validate_operational_options,
)
from reana_commons.validation.parameters import build_parameters_validator  # noqa: E402

_TAIL_LINES = 20
CONFIG_FILE = ".reana-parameters.json"  # a snakemake config file of the parameters (JSON is YAML)
# Without a deployment's list, every compute backend REANA knows (the serial step schema's enum):
# a name outside it can run nowhere.
REANA_COMPUTE_BACKENDS = list(
    serial_workflow_schema["properties"]["steps"]["items"]["properties"]["compute_backend"]["enum"]
)


@contextlib.contextmanager
def _captured() -> Iterator[list[str]]:
    """What the engines print on fds 1 and 2 while loading (cwltool's reasons go there)."""
    lines: list[str] = []
    saved_out, saved_err = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace")
            lines.extend(line for line in text.splitlines() if line.strip())


_FRAME = re.compile(r'^\s+File ".*", line \d+')
_CARETS = re.compile(r"^\s*[~^]+\s*$")


def _without_tracebacks(lines: list[str]) -> list[str]:
    """The engines' words without Python's stack frames (a person cannot act on those)."""
    kept: list[str] = []
    skip_code = False
    for line in lines:
        if skip_code:
            skip_code = False
            if line.startswith("    "):
                continue
        if line.startswith("Traceback (most recent call last)") or _CARETS.match(line):
            continue
        if _FRAME.match(line):
            skip_code = True
            continue
        kept.append(line)
    return kept


def _reason(exc: BaseException, output: list[str]) -> str:
    if isinstance(exc, SystemExit):
        message = exc.code if isinstance(exc.code, str) else ""
    else:
        message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    tail = [
        line for line in output if "UserWarning" not in line and "import pkg_resources" not in line
    ]
    details = "\n".join(_without_tracebacks(tail)[-_TAIL_LINES:])
    if details and details not in message:
        message = f"{message}\n{details}" if message else details
    message = "\n".join(_without_tracebacks([x for x in message.splitlines() if x.strip()]))
    return message.strip() or type(exc).__name__


def load(  # noqa: PLR0912, PLR0915 - reana-client's steps, in its order
    spec: dict[str, Any],
    backends: list[str] | None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load the workflow's files as reana-client does; every problem with its reana.yaml path."""
    errors: list[dict[str, Any]] = []
    warnings_out: list[dict[str, Any]] = []
    workflow = spec["workflow"]
    kind = workflow["type"]
    inputs = spec.get("inputs") or {}
    raw_declared = inputs.get("parameters")
    declared: dict[str, Any] = raw_declared if isinstance(raw_declared, dict) else {}
    if kind == "snakemake" and "input" not in declared and (parameters or declared):
        with open(CONFIG_FILE, "w", encoding="utf-8") as config:
            json.dump(parameters if parameters is not None else declared, config)
        spec.setdefault("inputs", {})["parameters"] = {**declared, "input": CONFIG_FILE}
    if "options" in inputs:
        try:
            inputs["options"] = validate_operational_options(kind, inputs["options"])
        except REANAValidationError:
            return {"ok": True, "errors": [], "warnings": [], "loaded": False}  # said by the worker
    with _captured() as output:
        try:
            workflow["specification"] = load_workflow_spec_from_reana_yaml(spec, None)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            failure: BaseException | None = exc
        else:
            failure = None
    if failure is not None:
        errors.append(
            {
                "path": ["workflow", "file"],
                "message": f"the {kind} workflow could not be loaded: {_reason(failure, output)}",
                "validator": f"{kind}.load",
            }
        )
        return {"ok": True, "errors": errors, "warnings": warnings_out, "loaded": False}
    with _captured() as output:
        try:
            parameters = load_input_parameters(spec, None)
        except BaseException as exc:
            errors.append(
                {
                    "path": ["inputs", "parameters", "input"],
                    "message": "the input parameters file could not be read: "
                    + _reason(exc, output),
                    "validator": f"{kind}.input",
                }
            )
            parameters = None
    if parameters is not None:
        spec.setdefault("inputs", {})["parameters"] = parameters
    with _captured() as output:
        try:
            validator = build_parameters_validator(spec)
            validator.validate_parameters()
        except BaseException as exc:
            errors.append(
                {
                    "path": ["workflow", "file"],
                    "message": f"the {kind} workflow is not valid: {_reason(exc, output)}",
                    "validator": f"{kind}.validate",
                }
            )
        else:
            for group in (
                "operations_warnings",
                "reana_params_warnings",
                "workflow_params_warnings",
            ):
                for item in getattr(validator, group, []):
                    warnings_out.append(
                        {"type": group.replace("_warnings", ""), "message": item["message"]}
                    )
    try:
        backend_validator = build_compute_backends_validator(
            spec, backends or REANA_COMPUTE_BACKENDS
        )
        if backend_validator is not None:
            backend_validator.validate()
    except REANAValidationError as exc:
        errors.append(
            {
                "path": ["workflow", "file"],
                "message": str(exc.message),
                "validator": "compute_backend",
            }
        )
    except (KeyError, TypeError, AttributeError):
        pass
    return {"ok": True, "errors": errors, "warnings": warnings_out, "loaded": True}


def main() -> None:
    """One request on stdin, one answer on stdout."""
    try:
        request = json.loads(sys.stdin.read())
        answer = load(request["spec"], request.get("compute_backends"), request.get("parameters"))
    except Exception as exc:
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    _PROTOCOL.write(json.dumps(answer, default=str) + "\n")
    _PROTOCOL.flush()


if __name__ == "__main__":
    main()
