"""Runs: submit, list, inspect, follow logs, fetch outputs, cancel, delete, re-run."""

from __future__ import annotations

import posixpath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from vre_common.deps import CurrentUser, bearer_token
from vre_common.problems import problem_responses
from vre_common.types import OFFSET_MAX
from vre_workflows.handlers.bodies import read_submission
from vre_workflows.handlers.deps import RunFilesDep, RunServiceDep
from vre_workflows.models import (
    PROJECT_PATTERN,
    OutputList,
    Run,
    RunCreate,
    RunPage,
    RunRerun,
    RunStatus,
)

router = APIRouter(prefix="/runs", tags=["runs"])

RunId = Annotated[str, Path(description="The run's id.", max_length=36)]

# RunCreate is read by hand (JSON or multipart), so FastAPI does not register it: inline it.
# Its nested models (InputRef, OutputDestination) are components through the Run model.
_RUN_CREATE = RunCreate.model_json_schema(ref_template="#/components/schemas/{model}")
_RUN_CREATE.pop("$defs", None)

_SUBMISSION = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _RUN_CREATE},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "run": {
                            "type": "string",
                            "description": "RunCreate as JSON (spec may come as its own part).",
                        },
                        "spec": {"type": "string", "description": "The reana.yaml text."},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Input files; each file name is its workspace path.",
                        },
                        "archive": {
                            "type": "string",
                            "format": "binary",
                            "description": "A tar (plain, gzip, bzip2, xz) or zip of the "
                            "analysis directory: its files join the uploads at their paths, its "
                            "reana.yaml is the spec when no other is given.",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=201,
    summary="Submit a run",
    description=(
        "Validates the reana.yaml (every error listed in a 422 problem), resolves Data Lake "
        "input DIDs, checks the backend can run it (images available locally, or host "
        "execution allowed; REANA token registered) and queues the run. JSON body "
        "(`RunCreate`), or multipart/form-data with a `run` part (RunCreate JSON), an "
        "optional `spec` part, `files` parts (uploaded inputs, file name = workspace path) "
        "and/or an `archive` part (a tar/zip of the analysis directory). The files are "
        "validated with the reana.yaml (a cwl, snakemake or yadage workflow is loaded by "
        "REANA's own loaders) and placed in the run's workspace."
    ),
    response_model=Run,
    responses=problem_responses(400, 401, 404, 409, 413, 415, 422, 503, 504),
    openapi_extra=_SUBMISSION,
)
async def create_run(request: Request, user: CurrentUser, runs: RunServiceDep) -> Run:
    body, uploads, form = await read_submission(request)
    try:
        return await runs.create(user, bearer_token(request), body, uploads)
    finally:
        if form is not None:
            await form.close()


@router.get(
    "",
    summary="List runs",
    description=(
        "The caller's runs, newest first; with `project`, that project's runs (needs "
        "runs.read there). Filter by status (repeatable) and name."
    ),
    response_model=RunPage,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_runs(
    *,
    user: CurrentUser,
    runs: RunServiceDep,
    status: Annotated[list[RunStatus] | None, Query(description="Only these statuses.")] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    project: Annotated[
        str | None, Query(pattern=PROJECT_PATTERN, description="A project's runs.")
    ] = None,
    page: Annotated[int, Query(ge=1, le=OFFSET_MAX)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RunPage:
    return await runs.list_runs(
        user, status=list(status or []), name=name, page=page, size=size, project=project
    )


@router.get(
    "/{run_id}",
    summary="Get a run",
    description=(
        "Status and its history with timestamps, step progress, backend ids, inputs with "
        "checksums, outputs with their DIDs, parameters, images and warnings."
    ),
    response_model=Run,
    responses=problem_responses(401, 404),
)
async def get_run(run_id: RunId, user: CurrentUser, runs: RunServiceDep) -> Run:
    return await runs.get(user, run_id)


@router.get(
    "/{run_id}/logs",
    summary="Read or follow a run's logs",
    description=(
        "Plain text. Without `step`, every step's log under a header line; with `step` (name "
        "or index), that step's log. With `follow=true` the response stays open and streams "
        "new lines as they are written until the step (or run) ends."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **problem_responses(401, 404)},
)
async def get_run_logs(
    *,
    request: Request,
    run_id: RunId,
    user: CurrentUser,
    files: RunFilesDep,
    step: Annotated[str | None, Query(max_length=255)] = None,
    follow: bool = False,
) -> StreamingResponse:
    stream = await files.logs(user, run_id, step=step, follow=follow, token=bearer_token(request))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/plain; charset=utf-8", headers=headers)


@router.get(
    "/{run_id}/outputs",
    summary="List a run's outputs",
    description="Declared outputs the run produced: size, adler32, md5 and DID once registered.",
    response_model=OutputList,
    responses=problem_responses(401, 404),
)
async def list_run_outputs(run_id: RunId, user: CurrentUser, runs: RunServiceDep) -> OutputList:
    return await runs.outputs(user, run_id)


@router.get(
    "/{run_id}/outputs/{path:path}",
    summary="Download one output",
    description="Streams the file from the run's workspace (HTTP Range supported).",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        **problem_responses(401, 404, 416),
    },
)
async def download_run_output(
    request: Request, run_id: RunId, path: str, user: CurrentUser, files: RunFilesDep
) -> FileResponse:
    file, output = await files.output_path(user, run_id, path, bearer_token(request))
    return FileResponse(
        file,
        media_type="application/octet-stream",
        filename=posixpath.basename(path),
        headers={"X-Checksum-Adler32": output.adler32, "X-Checksum-Md5": output.md5},
    )


@router.post(
    "/{run_id}/cancel",
    summary="Cancel a run",
    description=(
        "A queued run leaves the queue; a running one has its whole process group killed "
        "(or its REANA workflow stopped). Nothing is registered in the Data Lake."
    ),
    response_model=Run,
    responses=problem_responses(401, 404, 409),
)
async def cancel_run(run_id: RunId, user: CurrentUser, runs: RunServiceDep) -> Run:
    return await runs.cancel(user, run_id)


@router.delete(
    "/{run_id}",
    status_code=204,
    summary="Delete a run's workspace",
    description=(
        "Removes the workspace, logs and uploaded inputs (and the REANA workflow). The record "
        "stays, with status `deleted`, for provenance. Active runs must be cancelled first."
    ),
    response_class=Response,
    responses=problem_responses(401, 404, 409),
)
async def delete_run(run_id: RunId, user: CurrentUser, runs: RunServiceDep) -> Response:
    await runs.delete(user, run_id)
    return Response(status_code=204)


@router.post(
    "/{run_id}/rerun",
    status_code=201,
    summary="Re-run with changed parameters",
    description=(
        "A new run of the same specification and inputs (the same DIDs resolved again, the "
        "same uploaded files), with `parameters` overriding the original ones."
    ),
    response_model=Run,
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def rerun_run(
    run_id: RunId, body: RunRerun, request: Request, user: CurrentUser, runs: RunServiceDep
) -> Run:
    return await runs.rerun(user, bearer_token(request), run_id, body)
