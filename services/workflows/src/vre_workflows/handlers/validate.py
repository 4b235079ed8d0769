"""POST /validate: a reana.yaml checked by REANA's official validator and the service's rules."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_workflows.handlers.bodies import ARCHIVE_MEDIA_TYPES, read_validation
from vre_workflows.handlers.deps import ValidationServiceDep
from vre_workflows.models import Backend, ValidationReport
from vre_workflows.validation.files import MAX_MEMBERS, MAX_UNPACKED_BYTES

router = APIRouter(tags=["validation"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "string",
                            "description": "The reana.yaml (optional when the archive has one).",
                        },
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "The workflow's files; each file name is its path "
                            "in the analysis directory (e.g. workflow/main.cwl).",
                        },
                        "archive": {
                            "type": "string",
                            "format": "binary",
                            "description": "A tar (plain, gzip, bzip2, xz) or zip of the "
                            "analysis directory.",
                        },
                    },
                }
            },
            **{
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ARCHIVE_MEDIA_TYPES
            },
        },
    }
}


@router.post(
    "/validate",
    summary="Validate a reana.yaml",
    description=(
        "Checks a reana.yaml with the checks of `reana-client validate` (REANA's own code: "
        "the reana.yaml schema, the serial step schema, htcondor, compute backend and "
        "operational options checks) and this service's rules. Send the reana.yaml alone "
        "(YAML or JSON), with the workflow's files (multipart: `spec`, `files`, `archive`), "
        "or the analysis directory as a tar/zip body; with the files, a cwl, snakemake or "
        "yadage specification is loaded by REANA's own loaders too (`checked_files`), "
        "without them `unchecked` names what was not checked. Answers 200 with the warnings "
        "(unknown properties, unused or undefined parameters, dangerous commands) when it is "
        "valid; a 422 problem listing **every** error with its location (dotted path, line, "
        "column) when it is not. Paths that are absolute or contain `..` are errors (in the "
        "reana.yaml and in an archive, which may hold at most "
        f"{MAX_MEMBERS} files and {MAX_UNPACKED_BYTES >> 20} MiB); so is a value YAML reads "
        "as a date (REANA's client cannot send it); with `backend=local`, so is a yadage "
        "workflow."
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
    spec, files, form = await read_validation(request)
    try:
        return await validation.check(spec, backend=backend, files=files)
    finally:
        if files is not None:
            files.close()
        if form is not None:
            await form.close()
