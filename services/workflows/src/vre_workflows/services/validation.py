"""ValidationService: REANA's official validator (in its worker) plus the service's own rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vre_workflows.errors import InvalidSpecificationError
from vre_workflows.models import SpecFinding, SpecWarning, ValidationReport
from vre_workflows.spec import (
    ParsedSpec,
    SpecSyntaxError,
    parse_spec_text,
    path_findings,
    spec_sha256,
    workflow_type,
)
from vre_workflows.validation.worker_client import ReanaValidatorWorker


@dataclass
class ValidationOutcome:
    """A report, and for a valid serial submission its steps with parameters expanded."""

    report: ValidationReport
    expanded_steps: list[dict[str, Any]] = field(default_factory=list)


def parse(spec: str | dict[str, Any] | bytes) -> ParsedSpec:
    """The specification from text (YAML/JSON) or an object; a syntax error is a 422."""
    if isinstance(spec, dict):
        return ParsedSpec(spec=spec)
    text = spec.decode("utf-8", errors="replace") if isinstance(spec, bytes) else spec
    try:
        return parse_spec_text(text)
    except SpecSyntaxError as exc:
        report = ValidationReport(valid=False, errors=[exc.finding])
        raise invalid(report) from exc


def invalid(report: ValidationReport) -> InvalidSpecificationError:
    """The 422 problem for an invalid report: every error listed, warnings alongside."""
    count = len(report.errors)
    first = report.errors[0]
    where = f" at {first.path}" if first.path else ""
    line = f" (line {first.line})" if first.line else ""
    return InvalidSpecificationError(
        f"the workflow specification has {count} error(s); first{where}{line}: {first.msg}",
        errors=[e.model_dump(exclude_none=True) for e in report.errors],
        extra={
            "warnings": [w.model_dump(exclude_none=True) for w in report.warnings],
            "workflow_type": report.workflow_type,
        },
    )


class ValidationService:
    """Validate a reana.yaml: every schema error with its location, plus warnings.

    The REANA rules come from reana-commons (run in its own environment by the worker); the
    service adds what REANA checks elsewhere or not at all: paths that would leave the
    workspace, engines the chosen backend cannot run.
    """

    def __init__(self, worker: ReanaValidatorWorker) -> None:
        self._worker = worker

    async def validate(
        self,
        parsed: ParsedSpec,
        *,
        parameters: dict[str, Any] | None = None,
        name: str | None = None,
        backend: str | None = None,
    ) -> ValidationOutcome:
        """Validate; ``parameters`` (a submission) also expands serial commands."""
        spec = parsed.spec
        kind = workflow_type(spec)
        if not isinstance(spec, dict):
            finding = SpecFinding(
                loc=["spec"],
                path="",
                type="schema.type",
                msg="the specification must be a mapping (reana.yaml with a workflow section)",
                line=1 if parsed.source.root is not None else None,
            )
            return ValidationOutcome(ValidationReport(valid=False, errors=[finding]))
        answer = await self._worker.request(
            {"op": "validate", "spec": spec, "parameters": parameters, "name": name}
        )
        errors: list[SpecFinding] = []
        for item in answer.get("errors", []):
            path = list(item.get("path", []))
            dotted: str | None
            if path[:1] == ["name"]:
                loc: list[str | int] = ["name"]
                dotted = ""
            else:
                loc = ["spec", *path]
                dotted = ".".join(str(p) for p in path)
            position = parsed.source.locate(path) if dotted else None
            validator = str(item.get("validator", "schema"))
            errors.append(
                SpecFinding(
                    loc=loc,
                    path=dotted or "",
                    msg=str(item.get("message", "")),
                    type=validator
                    if validator in ("parameters", "workflow_name")
                    else f"schema.{validator}",
                    line=position[0] if position else None,
                    column=position[1] if position else None,
                )
            )
        for finding in path_findings(spec):
            position = parsed.source.locate(list(finding.loc[1:]))
            errors.append(
                finding.model_copy(
                    update={
                        "line": position[0] if position else None,
                        "column": position[1] if position else None,
                    }
                )
            )
        if backend == "local" and kind == "yadage":
            position = parsed.source.locate(["workflow", "type"])
            errors.append(
                SpecFinding(
                    loc=["spec", "workflow", "type"],
                    path="workflow.type",
                    msg="yadage workflows run only on REANA; the local executor cannot run them",
                    type="backend",
                    line=position[0] if position else None,
                    column=position[1] if position else None,
                )
            )
        warnings = []
        for item in answer.get("warnings", []):
            path = item.get("path")
            where = ".".join(str(p) for p in path) if isinstance(path, list) else None
            position = parsed.source.locate(path) if isinstance(path, list) else None
            warnings.append(
                SpecWarning(
                    type=str(item.get("type", "warning")),
                    message=str(item.get("message", "")),
                    path=where,
                    line=position[0] if position else None,
                )
            )
        report = ValidationReport(
            valid=not errors,
            workflow_type=kind,
            spec_sha256=spec_sha256(spec),
            errors=errors,
            warnings=warnings,
        )
        return ValidationOutcome(report, list(answer.get("expanded_steps") or []))

    async def check(
        self, raw: str | bytes | dict[str, Any], *, backend: str | None = None
    ) -> ValidationReport:
        """``POST /validate``: the report if valid, a 422 problem listing the errors if not."""
        outcome = await self.validate(parse(raw), backend=backend)
        if not outcome.report.valid:
            raise invalid(outcome.report)
        return outcome.report
