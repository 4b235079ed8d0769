"""A run's record (vre_common.run_record): the specification, parameters, images, inline code
and every input and output with its checksums, for publication beside the outputs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vre_common.auth import Principal
from vre_common.run_record import RecordedFile, RecordedStep, RunRecord, image_of
from vre_workflows.errors import RunNotFoundError
from vre_workflows.services.runs import RunService
from vre_workflows.storage.runs import RunStore
from vre_workflows.workspace import RunPaths, inside

# Inline files are code and configuration the submission carried as text (bounded by the
# service's inline limit); anything that does not decode as UTF-8 is left to the checksums.


class RunRecordService:
    """Builds the record of a run the caller may read."""

    def __init__(self, *, runs: RunService, store: RunStore, data_dir: Path) -> None:
        self._runs = runs
        self._store = store
        self._data_dir = data_dir

    async def record(self, user: Principal, run_id: str) -> RunRecord:
        """The run's record (404 when the caller may not read the run)."""
        run = await self._runs.get(user, run_id)
        spec = await self._store.spec(run.id)
        if spec is None:
            raise RunNotFoundError(f"no run {run_id}")
        paths = RunPaths.of(self._data_dir, run.id)
        files: dict[str, str] = {}
        for item in run.inputs:
            if item.kind != "inline":
                continue
            text = await asyncio.to_thread(_read_text, paths, item.path)
            if text is not None:
                files[item.path] = text
        return RunRecord(
            run_id=run.id,
            name=run.name,
            workflow_type=run.workflow_type,
            backend=run.backend,
            spec=spec,
            spec_sha256=run.spec_sha256,
            parameters=run.parameters,
            images=[image_of(i) for i in run.images],
            files=files,
            inputs=[
                RecordedFile(
                    path=i.path, did=i.did, kind=i.kind, bytes=i.bytes, adler32=i.adler32, md5=i.md5
                )
                for i in run.inputs
            ],
            outputs=[
                RecordedFile(
                    path=o.path,
                    did=o.did,
                    kind="output",
                    bytes=o.bytes,
                    adler32=o.adler32,
                    md5=o.md5,
                )
                for o in run.outputs
            ],
            steps=[
                RecordedStep(name=s.name, image=s.image, commands=s.commands) for s in run.steps
            ],
            created_at=run.created_at,
            finished_at=run.finished_at,
        )


def _read_text(paths: RunPaths, rel: str) -> str | None:
    try:
        return inside(paths.uploads, rel).read_text("utf-8")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
