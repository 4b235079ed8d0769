"""POST /validate: a reana.yaml checked by REANA's official validator and the service's rules."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_workflows.deps import ValidationServiceDep
from vre_workflows.handlers.bodies import read_spec
from vre_workflows.models import Backend, ValidationReport

router = APIRouter(tags=["validation"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/validate",
    summary="Validate a reana.yaml",
    description=(
        "Checks a reana.yaml (YAML or JSON body) with REANA's official validator "
        "(reana-commons) and this service's rules. Answers 200 with the warnings (unknown "
        "properties, unused or undefined parameters, dangerous commands) when it is valid; "
        "a 422 problem listing **every** error with its location (dotted path, line, column) "
        "when it is not. Output or input paths that are absolute or contain `..` are errors; "
        "with `backend=local`, so is a yadage workflow."
    ),
    response_model=ValidationReport,
    responses=problem_responses(400, 401, 413, 415, 422, 503, 504),
    openapi_extra=_BODY,
)
async def validate_specification(
    request: Request,
    user: CurrentUser,
    validation: ValidationServiceDep,
    backend: Backend | None = Query(
        default=None, description="Also check this backend can run it."
    ),
) -> ValidationReport:
    return await validation.check(await read_spec(request), backend=backend)
