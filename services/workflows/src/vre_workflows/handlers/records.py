"""A run's record: what a publication carries so that the run can be reproduced from its DOI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_common.run_record import RunRecord
from vre_workflows.handlers.deps import RunServiceDep, Session, get_factory
from vre_workflows.services.run_records import RunRecordService
from vre_workflows.storage.runs import RunStore

router = APIRouter(prefix="/runs", tags=["runs"])

RunId = Annotated[str, Path(description="The run's id.", max_length=36)]


async def _record_service(
    request: Request, session: Session, runs: RunServiceDep
) -> RunRecordService:
    return RunRecordService(
        runs=runs, store=RunStore(session), data_dir=get_factory(request).settings.data_dir
    )


RunRecordServiceDep = Annotated[RunRecordService, Depends(_record_service)]


@router.get(
    "/{run_id}/record",
    summary="Get a run's record",
    description=(
        "The machine-readable run record (`vre-run-record`, versioned by `schema_version`): "
        "the reana.yaml as JSON with its sha256, parameters, images (digest where the "
        "reference pins one), inline code files, every input (DID, size, adler32, md5) and "
        "output with the same, the steps and the VRE version. The zenodo service publishes "
        "it as `vre-run-record.json` with a run's outputs; a reproduction reads it back."
    ),
    response_model=RunRecord,
    responses=problem_responses(401, 404),
)
async def get_run_record(
    run_id: RunId, user: CurrentUser, records: RunRecordServiceDep
) -> RunRecord:
    return await records.record(user, run_id)
