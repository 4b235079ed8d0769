"""Reproductions: from a DOI back to a re-run, compared file by file (issue 21).

Starting one is synchronous up to the run record: the DOI is resolved, the record's
``vre-run-record.json`` read (422 saying what is missing when there is none). The rest is a
job (status, log, cancel):

1. **inputs** — each recorded input is taken, in this order: the same DID when it still has
   the recorded md5 (and adler32); else the record's own copy (a published file with that
   md5), written into the target scope; inline code from the run record. Anything else stops
   the job *before running* with verdict ``could not run`` naming the input and why;
2. **re-run** — the recorded specification, parameters and code submitted to the workflows
   service as the caller, in the project asked for (its ``runs.submit`` rule applies);
3. **comparison** — every recorded output against the re-run's (services.comparison), giving
   ``reproduced``, ``reproduced within tolerance`` or ``differs``;
4. **provenance** — a ``reproduction`` activity that used the DOI and generated the re-run's
   outputs (which the workflows service links to the re-run).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.errors import ForbiddenError, InvalidInputError, NotFoundError, VreError
from vre_common.jobs import JobSupervisor
from vre_common.policy import Action, ProjectGate
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id
from vre_common.provenance.recorder import ServiceEvents
from vre_common.run_record import (
    RUN_RECORD_FILENAME,
    RUN_RECORD_SCHEMA_VERSION,
    RecordedFile,
    RunRecord,
)
from vre_zenodo.backends.base import (
    DatalakeConnector,
    DatalakePort,
    RunnerPort,
    ZenodoFile,
    ZenodoPort,
)
from vre_zenodo.errors import ReproductionNotFoundError, RunRecordMissingError
from vre_zenodo.models import InputCheck, Reproduction, ReproductionCreate
from vre_zenodo.services.comparison import FileComparison, compare, verdict
from vre_zenodo.services.credentials import CredentialService
from vre_zenodo.services.records import RecordService
from vre_zenodo.storage.reproductions import ReproductionStore

log = structlog.get_logger("vre.zenodo.reproductions")

MAX_RECORD_BYTES = 16 * 1024 * 1024
# Original and reproduced outputs are compared in memory: larger ones by checksum alone.
MAX_COMPARED_BYTES = 256 * 1024 * 1024
_TERMINAL = {"finished", "failed", "cancelled", "interrupted", "deleted"}

UnitFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class ReproductionJob:
    """What a reproduction job works from: who, which record, what was asked."""

    id: str
    owner: tuple[str, str]  # (user key, user name)
    doi: str
    bearer: str
    zenodo_token: str | None
    record: RunRecord
    files: list[ZenodoFile]
    request: ReproductionCreate


async def _read(zenodo: ZenodoPort, file: ZenodoFile, token: str | None, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async with zenodo.download(file, token) as stream:
        async for chunk in stream.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise InvalidInputError(f"{file.key} is larger than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


class ReproductionService:
    """Start reproductions and show them to their owner."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        store: ReproductionStore,
        records: RecordService,
        zenodo: ZenodoPort,
        credentials: CredentialService,
        supervisor: JobSupervisor,
        worker: ReproductionWorker,
        projects: ProjectGate,
    ) -> None:
        self._session = session
        self._store = store
        self._records = records
        self._zenodo = zenodo
        self._credentials = credentials
        self._supervisor = supervisor
        self._worker = worker
        self._projects = projects

    async def start(
        self, user: Principal, bearer: str, request: ReproductionCreate
    ) -> Reproduction:
        """Read the record's run record, record the job and start it after the commit."""
        if request.project:
            scope = self._projects.scope_of(request.project)
            await self._projects.require(user, bearer, scope, Action.DATA_WRITE)
        token = await self._credentials.optional_token(user)
        record_id = await self._records.resolve_doi(request.doi, token)
        record = await self._zenodo.get_record(record_id, token)
        doi = record.doi or request.doi
        found = [f for f in record.files if f.key == RUN_RECORD_FILENAME]
        if not found:
            names = ", ".join(f.key for f in record.files[:10]) or "none readable"
            raise RunRecordMissingError(
                f"record {record.id} ({doi}) has no {RUN_RECORD_FILENAME}, the run record a "
                f"reproduction needs (its specification, parameters and input checksums); it "
                f"was not published from a VRE run. Its files: {names}",
                errors=[{"loc": ["body", "doi"], "msg": f"no {RUN_RECORD_FILENAME}",
                         "type": "run_record_missing"}],
            )  # fmt: skip
        raw = await _read(self._zenodo, found[0], token, MAX_RECORD_BYTES)
        try:
            run_record = RunRecord.model_validate(json.loads(raw))
        except ValueError as exc:
            raise RunRecordMissingError(
                f"the {RUN_RECORD_FILENAME} of record {record.id} is not a run record: {exc}"[:800],
                errors=[{"loc": ["body", "doi"], "msg": "unreadable run record",
                         "type": "run_record_invalid"}],
            ) from exc  # fmt: skip
        if not run_record.spec_intact():
            raise RunRecordMissingError(
                f"the run record of record {record.id} is damaged: its specification does "
                f"not have the recorded sha256 {run_record.spec_sha256}",
                errors=[{"loc": ["body", "doi"], "msg": "specification does not match its "
                         "sha256", "type": "run_record_invalid"}],
            )  # fmt: skip
        if run_record.schema_version > RUN_RECORD_SCHEMA_VERSION:
            raise RunRecordMissingError(
                f"the run record of record {record.id} has schema version "
                f"{run_record.schema_version}; this VRE reads up to {RUN_RECORD_SCHEMA_VERSION}"
            )
        job = await self._store.create(
            owner=user.key,
            owner_name=user.username,
            doi=doi,
            record_id=record.id,
            project=request.project,
            tolerance=request.tolerance,
            original_run_id=run_record.run_id,
        )
        worker = self._worker
        context = ReproductionJob(
            id=job.id,
            owner=(user.key, user.username),
            doi=doi,
            bearer=bearer,
            zenodo_token=token,
            record=run_record,
            files=list(record.files),
            request=request,
        )

        async def run() -> None:
            await worker.run(context)

        async def interrupted() -> None:
            await worker.interrupted(job.id, bearer)

        self._supervisor.start_after_commit(self._session, job.id, run, interrupted)
        return job

    async def get(self, user: Principal, reproduction_id: str) -> Reproduction:
        """One of the caller's reproductions."""
        job = await self._store.get(reproduction_id, owner=user.key)
        if job is None:
            raise ReproductionNotFoundError(f"you have no reproduction {reproduction_id}")
        return job

    async def list_mine(self, user: Principal) -> list[Reproduction]:
        """The caller's reproductions, newest first."""
        return await self._store.list_owned(user.key, limit=None)

    async def log(self, user: Principal, reproduction_id: str) -> str:
        """The job's log as text."""
        await self.get(user, reproduction_id)
        return "".join(line + "\n" for line in await self._store.log(reproduction_id))

    async def cancel(self, user: Principal, reproduction_id: str) -> Reproduction:
        """Stop the job (and its re-run); a finished one is left as it is."""
        job = await self.get(user, reproduction_id)
        if job.state in ("finished", "cancelled", "interrupted"):
            return job
        await self._supervisor.cancel(job.id)
        return await self.get(user, reproduction_id)


class ReproductionWorker:
    """Runs one reproduction: inputs, re-run, comparison, provenance."""

    def __init__(
        self,
        *,
        unit: UnitFactory,
        zenodo: ZenodoPort,
        datalake: DatalakeConnector,
        workflows: RunnerPort,
        projects: ProjectGate,
        events: ServiceEvents,
        poll_seconds: float = 0.5,
    ) -> None:
        self._unit = unit
        self._zenodo = zenodo
        self._datalake = datalake
        self._workflows = workflows
        self._projects = projects
        self._events = events
        self._poll = poll_seconds

    async def _update(self, rid: str, line: str | None = None, **values: Any) -> None:
        async with self._unit() as session:
            await ReproductionStore(session).update(rid, line=line, **values)

    async def _run_id(self, rid: str) -> str | None:
        async with self._unit() as session:
            job = await ReproductionStore(session).get(rid)
        return job.run_id if job else None

    async def interrupted(self, rid: str, bearer: str) -> None:
        """Cancelled (by its owner, or a shutdown): the re-run is cancelled too."""
        run_id = await self._run_id(rid)
        if run_id:
            try:
                await self._workflows.cancel_run(bearer, run_id)
            except VreError as exc:
                log.info("rerun_cancel_failed", reproduction=rid, error=type(exc).__name__)
        await self._update(rid, "cancelled", state="cancelled")

    async def run(self, job: ReproductionJob) -> None:
        """The whole job; every expected failure ends as ``could not run`` with its reason."""
        try:
            await self._run(job)
        except VreError as exc:
            log.info("reproduction_failed", reproduction=job.id, error=type(exc).__name__)
            await self._update(
                job.id, f"could not run: {exc.detail}", state="finished",
                verdict="could not run", reason=exc.detail,
            )  # fmt: skip
        except Exception:
            log.exception("reproduction_crashed", reproduction=job.id)
            await self._update(
                job.id, "could not run: an internal error (see the service's log)",
                state="finished", verdict="could not run", reason="internal error",
            )  # fmt: skip

    async def _run(self, job: ReproductionJob) -> None:
        rid, record, request, bearer = job.id, job.record, job.request, job.bearer
        datalake = self._datalake.for_token(bearer)
        scope = (
            self._projects.scope_of(request.project)
            if request.project
            else await datalake.my_scope()
        )
        await self._update(
            rid, f"run record of run {record.run_id} read; checking {len(record.inputs)} "
            f"input(s) for scope {scope}", state="checking",
        )  # fmt: skip
        checks = await self._inputs(job, datalake, scope)
        await self._update(rid, inputs=[c.model_dump() for c in checks])
        blocked = [c for c in checks if c.source in ("missing", "changed")]
        if blocked:
            reason = "; ".join(f"input {c.did or c.path}: {c.detail}" for c in blocked)
            await self._update(
                rid, f"stopped before running: {reason}", state="finished",
                verdict="could not run", reason=reason,
            )  # fmt: skip
            return

        body: dict[str, Any] = {
            "spec": record.spec,
            "parameters": record.parameters,
            "inputs": [{"did": c.used, "path": c.path} for c in checks if c.used],
            "files": record.files,
            "name": _run_name(record.name),
        }
        if request.project:
            body["project"] = request.project
        if request.backend:
            body["backend"] = request.backend
        run = await self._workflows.submit_run(bearer, body)
        run_id = str(run["id"])
        await self._update(rid, f"re-run {run_id} submitted", state="running", run_id=run_id)
        while run.get("status") not in _TERMINAL:
            await asyncio.sleep(self._poll)
            run = await self._workflows.get_run(bearer, run_id)
        if run.get("status") != "finished":
            error = run.get("error") or {}
            reason = f"the re-run {run_id} ended {run.get('status')}" + (
                f": {error.get('detail')}"
                if isinstance(error, dict) and error.get("detail")
                else ""
            )
            await self._update(
                rid, reason, state="finished", verdict="could not run", reason=reason
            )
            return

        await self._update(rid, f"re-run {run_id} finished; comparing outputs", state="comparing")
        outputs = {str(o["path"]): o for o in run.get("outputs") or [] if isinstance(o, dict)}
        compared = [
            await self._compare(job, datalake, original, outputs.get(original.path))
            for original in record.outputs
        ]
        outcome = verdict(compared)
        generated = [did_id(*str(o["did"]).split(":", 1)) for o in outputs.values() if o.get("did")]
        async with self._unit() as session:
            await ReproductionStore(session).update(
                rid,
                line=f"verdict: {outcome}",
                state="finished",
                verdict=outcome,
                files=[c.model_dump() for c in compared],
            )
            event = _event(job, run_id, outcome, generated)
            await self._events.add(session, event)
        self._events.wake()

    async def _inputs(
        self, job: ReproductionJob, datalake: DatalakePort, scope: str
    ) -> list[InputCheck]:
        rid, record, token = job.id, job.record, job.zenodo_token
        by_md5 = {f.md5: f for f in job.files if f.md5}
        checks: list[InputCheck] = []
        for item in record.inputs:
            check = InputCheck(path=item.path, did=item.did, md5=item.md5, source="missing")
            if item.kind == "inline":
                if item.path in record.files:
                    check.source = "inline"
                else:
                    check.detail = "inline code not carried by the run record"
                checks.append(check)
                continue
            if item.did:
                did_scope, _, name = item.did.partition(":")
                try:
                    now = await datalake.get_did(did_scope, name)
                except (NotFoundError, ForbiddenError):
                    check.detail = "no longer in the Data Lake, or not readable by you"
                else:
                    same = now.md5 == item.md5 and (
                        not (now.adler32 and item.adler32) or now.adler32 == item.adler32
                    )
                    if same:
                        check.source, check.used = "data lake", item.did
                        checks.append(check)
                        continue
                    check.source = "changed"
                    check.detail = (
                        f"changed in the Data Lake: md5 {item.md5} recorded, {now.md5} now"
                    )
            published = by_md5.get(item.md5) if item.md5 else None
            if published is not None:
                name = f"reproduction-{rid[:8]}/{item.path}"
                data = await _read(self._zenodo, published, token, MAX_COMPARED_BYTES)
                stored = await datalake.upload(scope, name, data, md5=item.md5, size=len(data))
                check.source, check.used = "record", f"{stored.scope}:{stored.name}"
                check.detail = f"taken from the record's file {published.key}"
            elif check.detail is None:
                check.detail = "not published in the record and not in the Data Lake"
            await self._update(rid, f"input {item.path}: {check.source} ({check.detail})")
            checks.append(check)
        return checks

    async def _compare(
        self,
        job: ReproductionJob,
        datalake: DatalakePort,
        original: RecordedFile,
        new: dict[str, Any] | None,
    ) -> FileComparison:
        files, token, tolerance = job.files, job.zenodo_token, job.request.tolerance
        new_md5 = str(new["md5"]) if new and new.get("md5") else None
        args: dict[str, Any] = {
            "original_md5": original.md5,
            "reproduced_md5": new_md5,
            "original_bytes": original.bytes,
            "reproduced_bytes": int(new["bytes"]) if new and new.get("bytes") is not None else None,
            "tolerance": tolerance,
        }
        if new_md5 is None or new_md5 == original.md5:
            return compare(original.path, **args)
        published = next((f for f in files if original.md5 and f.md5 == original.md5), None)
        sizes = [original.bytes or 0, args["reproduced_bytes"] or 0]
        if published is None or not new or not new.get("did") or max(sizes) > MAX_COMPARED_BYTES:
            return compare(original.path, **args)
        old_bytes = await _read(self._zenodo, published, token, MAX_COMPARED_BYTES)
        scope, _, name = str(new["did"]).partition(":")
        async with datalake.download(scope, name) as stream:
            new_bytes = b"".join([c async for c in stream.iter_bytes()])
        if hashlib.md5(new_bytes, usedforsecurity=False).hexdigest() != new_md5:
            raise InvalidInputError(f"the Data Lake gave other bytes for {new['did']}")
        return compare(original.path, original=old_bytes, reproduced=new_bytes, **args)


def _event(job: ReproductionJob, run_id: str, outcome: str, generated: list[str]) -> Event:
    """The ``reproduction`` activity: used the DOI, generated the re-run's outputs."""
    activity = f"reproduction:{job.id}"
    return Event.create(
        EventKind.REPRODUCTION,
        job.owner[0],
        service="zenodo",
        project=job.request.project,
        activity=activity,
        used=[doi_id(job.doi)],
        generated=generated,
        attributes={
            "reproduction_id": job.id,
            "run_id": run_id,
            "original_run_id": job.record.run_id,
            "verdict": outcome,
            "tolerance": job.request.tolerance,
        },
        labels={activity: f"reproduction of {job.doi}"},
    ).model_copy(update={"actor_name": job.owner[1]})


def _run_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "-" for c in name)
    return ("reproduce-" + cleaned)[:100]
