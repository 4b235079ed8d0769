"""ImportService and ImportRunner: a Zenodo record's files streamed into the Data Lake.

Rules:
- each file is streamed Zenodo → Data Lake with its md5 sent as Content-MD5, so the datalake
  refuses bytes that differ (nothing registered); our download also checks md5 and size;
- a file already in the Data Lake under its name with the same md5 is kept (``exists``);
  with another md5 the file fails (nothing is overwritten);
- once the files are in, the dataset (``zenodo-<record id>``) is created if needed, the files
  attached and the record's DOI, title, version and license set as its metadata; keys the
  Data Lake refuses become warnings on the job (custom keys need Rucio on PostgreSQL);
- a per-file failure (checksum, name, conflict) does not stop the other files; a failure of
  the caller's token, the Data Lake or Zenodo stops the job.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.errors import (
    BadRequestError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    VreError,
    problem_type_uri,
)
from vre_common.jobs import JobSupervisor
from vre_common.policy import Action, ProjectGate
from vre_common.problems import internal_problem, interrupted_problem, stored_problem
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id
from vre_common.provenance.recorder import ServiceEvents
from vre_zenodo.backends.base import DatalakeConnector, DatalakePort, ZenodoFile, ZenodoPort
from vre_zenodo.config import ImportSettings, JobSettings
from vre_zenodo.errors import ChecksumMismatchError, ImportNotFoundError, RecordNotFoundError
from vre_zenodo.models import Import, ImportCreate
from vre_zenodo.services.credentials import CredentialService
from vre_zenodo.services.jobs import counted
from vre_zenodo.services.records import RecordService
from vre_zenodo.storage.imports import ImportStore, NewImportFile, StoredImport

log = structlog.get_logger("vre.zenodo.imports")

UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Failures that concern one file only; the others go on. (A Data Lake 404/403 on upload
# means the scope is missing or not the caller's: that stops the job.)
_FILE_ERRORS = (
    ChecksumMismatchError,
    InvalidInputError,
    BadRequestError,
    ConflictError,
    RecordNotFoundError,
    PayloadTooLargeError,
)


INTERNAL_PROBLEM = internal_problem(
    "the job stopped on an unexpected error; it is in the service's log"
)


def problem_of(exc: VreError) -> dict[str, Any]:
    """An error as a problem document (stored on jobs; no extension members)."""
    return stored_problem(exc, extensions=False)


def safe_key(key: str) -> str:
    """A Zenodo file name as a DID name segment: ASCII letters, digits, '.', '-', '_'."""
    ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("_", ascii_key).strip("_") or "file"
    if not cleaned[0].isalnum():
        cleaned = "f" + cleaned
    return cleaned


def did_names(record_id: int, keys: list[str], template: str) -> list[str]:
    """DID names of a record's files (made unique if cleaning made two the same)."""
    names: list[str] = []
    seen: set[str] = set()
    for position, key in enumerate(keys):
        name = template.format(record_id=record_id, key=safe_key(key))
        if name in seen:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{position}.{ext}" if dot and stem else f"{name}-{position}"
        seen.add(name)
        names.append(name)
    return names


class ImportService:
    """Start imports and show them to their owner."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        store: ImportStore,
        credentials: CredentialService,
        records: RecordService,
        zenodo: ZenodoPort,
        supervisor: JobSupervisor,
        runner: ImportRunner,
        settings: ImportSettings,
        projects: ProjectGate,
    ) -> None:
        self._session = session
        self._projects = projects
        self._store = store
        self._credentials = credentials
        self._records = records
        self._zenodo = zenodo
        self._supervisor = supervisor
        self._runner = runner
        self._settings = settings

    async def start(self, user: Principal, bearer: str, request: ImportCreate) -> Import:
        """Look the record up, record the job, and start it once the job is committed.

        Into a project's scope this needs ``data.write`` there."""
        await self._projects.require(user, bearer, request.scope, Action.DATA_WRITE)
        zenodo_token = await self._credentials.optional_token(user)
        if request.record_id is not None:
            record_id = request.record_id
        else:  # the model guarantees a DOI then
            record_id = await self._records.resolve_doi(request.doi or "", zenodo_token)
        record = await self._zenodo.get_record(record_id, zenodo_token)
        if not record.files:
            raise InvalidInputError(
                f"Zenodo record {record.id} has no files that can be read (none, or they "
                "are restricted to people with access)",
                errors=[{"loc": ["body", "record_id"], "msg": "no readable files",
                         "type": "value_error"}],
            )  # fmt: skip
        if len(record.files) > self._settings.max_files:
            raise InvalidInputError(
                f"Zenodo record {record.id} has {len(record.files)} files; at most "
                f"{self._settings.max_files} are imported at once",
                errors=[{"loc": ["body", "record_id"], "msg": "too many files",
                         "type": "value_error"}],
            )  # fmt: skip
        names = did_names(record.id, [f.key for f in record.files], self._settings.file_template)
        dataset = request.dataset or self._settings.dataset_template.format(record_id=record.id)
        job = await self._store.create(
            owner=user.key,
            owner_name=user.username,
            record_id=record.id,
            doi=record.doi,
            title=record.title,
            version=record.version,
            license=record.license,
            scope=request.scope,
            dataset=dataset,
            rse=request.rse,
            files=[
                NewImportFile(key=f.key, did_name=name, size=f.size, md5=f.md5, url=f.url)
                for f, name in zip(record.files, names, strict=True)
            ],
        )
        metadata = {
            "doi": record.doi,
            "title": record.title,
            "version": record.version,
            "license": record.license,
            "record_id": record.id,
            "publication_date": record.publication_date,
            "resource_type": record.resource_type,
        }
        runner = self._runner

        async def run() -> None:
            await runner.run(job.id, bearer, zenodo_token, metadata)

        async def interrupted() -> None:
            await runner.interrupted(job.id)

        self._supervisor.start_after_commit(self._session, job.id, run, interrupted)
        return job.public()

    async def get(self, user: Principal, import_id: str) -> Import:
        """One of the caller's imports."""
        job = await self._store.get(import_id, owner=user.key)
        if job is None:
            raise ImportNotFoundError(f"you have no import {import_id}")
        return job.public()

    async def list_mine(self, user: Principal) -> list[Import]:
        """The caller's imports, newest first."""
        return [job.public() for job in await self._store.list_owned(user.key)]


class ImportRunner:
    """Runs one import job (in the background, each step its own unit of work)."""

    def __init__(
        self,
        *,
        unit: UnitOfWork,
        zenodo: ZenodoPort,
        datalake: DatalakeConnector,
        settings: ImportSettings,
        jobs: JobSettings,
        projects: ProjectGate,
        events: ServiceEvents,
    ) -> None:
        self._unit = unit
        self._projects = projects
        self._events = events
        self._zenodo = zenodo
        self._datalake = datalake
        self._settings = settings
        self._interval = jobs.progress_interval_seconds

    async def _load(self, import_id: str) -> StoredImport:
        async with self._unit() as session:
            job = await ImportStore(session).get(import_id)
        if job is None:
            raise ImportNotFoundError(f"import {import_id} vanished")
        return job

    async def _set_file(self, import_id: str, position: int, **values: Any) -> None:
        async with self._unit() as session:
            await ImportStore(session).set_file(import_id, position, **values)

    async def interrupted(self, import_id: str) -> None:
        """Record that the job was cancelled (service shutdown)."""
        async with self._unit() as session:
            store = ImportStore(session)
            job = await store.get(import_id)
            if job is None or job.state not in ("queued", "running"):
                return
            for f in job.stored_files:
                if f.state == "transferring":
                    await store.set_file(import_id, f.position, state="failed", error="interrupted")
            await store.set_state(
                import_id,
                "interrupted",
                error=interrupted_problem(
                    "the zenodo service stopped during this import; start the import again "
                    "(files already imported are kept)"
                ),
            )

    async def run(
        self,
        import_id: str,
        bearer: str,
        zenodo_token: str | None,
        metadata: dict[str, Any],
    ) -> None:
        """Import every file, then the dataset and its metadata; record the outcome."""
        async with self._unit() as session:
            await ImportStore(session).set_state(import_id, "running")
        job = await self._load(import_id)
        try:
            datalake = self._datalake.for_token(bearer)
            for f in job.stored_files:
                if f.state in ("done", "exists"):
                    continue
                await self._import_file(job, f.position, datalake, zenodo_token)
            job = await self._load(import_id)
            warnings = await self._finish_dataset(job, datalake, metadata)
        except VreError as exc:
            log.info("import_failed", import_id=import_id, error=type(exc).__name__)
            async with self._unit() as session:
                await ImportStore(session).set_state(import_id, "failed", error=problem_of(exc))
            return
        except Exception:
            log.exception("import_crashed", import_id=import_id)
            async with self._unit() as session:
                await ImportStore(session).set_state(import_id, "failed", error=INTERNAL_PROBLEM)
            return
        job = await self._load(import_id)
        failed = [f for f in job.stored_files if f.state not in ("done", "exists")]
        async with self._unit() as session:
            store = ImportStore(session)
            event = self._event(job)
            if event is not None:
                await self._events.add(session, event)
            if failed:
                await store.set_state(
                    import_id,
                    "failed",
                    warnings=warnings,
                    error={
                        "type": problem_type_uri("import-incomplete"),
                        "title": "Import incomplete",
                        "status": 502,
                        "detail": f"{len(failed)} of {len(job.stored_files)} files could not "
                        f"be imported: " + "; ".join(f"{f.key}: {f.error}" for f in failed[:5]),
                    },
                )
            else:
                await store.set_state(import_id, "completed", warnings=warnings)
        self._events.wake()

    def _event(self, job: StoredImport) -> Event | None:
        """The ``import`` event: the DOI used, the files (and their dataset) generated."""
        files = [
            did_id(job.scope, f.did_name) for f in job.stored_files if f.state in ("done", "exists")
        ]
        if not files:
            return None
        dataset = did_id(job.scope, job.dataset_name)
        used = [doi_id(job.doi)] if job.doi else []
        labels = {dataset: job.title} if job.title else {}
        if job.doi and job.title:
            labels[doi_id(job.doi)] = job.title
        return Event.create(
            EventKind.IMPORT,
            job.owner_key,
            service="zenodo",
            project=self._projects.slug_of(job.scope),
            used=used,
            generated=[*files, dataset],
            attributes={"record_id": job.record_id, "import_id": job.id},
            labels=labels,
        ).model_copy(update={"actor_name": job.owner})

    async def _import_file(
        self,
        job: StoredImport,
        position: int,
        datalake: DatalakePort,
        zenodo_token: str | None,
    ) -> None:
        f = next(x for x in job.stored_files if x.position == position)
        try:
            existing = await datalake.get_did(job.scope, f.did_name)
        except NotFoundError:
            existing = None
        if existing is not None:
            if existing.type == "file" and f.md5 and existing.md5 == f.md5:
                await self._set_file(job.id, position, state="exists", bytes_done=f.bytes)
                return
            await self._set_file(
                job.id,
                position,
                state="failed",
                error=f"{f.did} already exists in the Data Lake with other content",
            )
            return
        await self._set_file(job.id, position, state="transferring", bytes_done=0)

        async def progress(done: int) -> None:
            await self._set_file(job.id, position, bytes_done=done)

        source = ZenodoFile(key=f.key, size=f.bytes, md5=f.md5, url=f.url)
        try:
            async with self._zenodo.download(source, zenodo_token) as stream:
                uploaded = await datalake.upload(
                    job.scope,
                    f.did_name,
                    counted(stream.iter_bytes(), progress, self._interval),
                    rse=job.rse,
                    md5=f.md5,
                    size=f.bytes,
                )
            if f.md5 and uploaded.md5 != f.md5:
                raise ChecksumMismatchError(
                    f"the Data Lake registered {f.did} with md5 {uploaded.md5}, Zenodo's "
                    f"record says {f.md5}"
                )
        except _FILE_ERRORS as exc:
            log.info("import_file_failed", import_id=job.id, error=type(exc).__name__)
            await self._set_file(job.id, position, state="failed", error=exc.detail)
            return
        except (VreError, asyncio.CancelledError):
            raise
        await self._set_file(job.id, position, state="done", bytes_done=uploaded.bytes)

    async def _finish_dataset(
        self, job: StoredImport, datalake: DatalakePort, metadata: dict[str, Any]
    ) -> list[str]:
        """Create/attach/describe the dataset if any file made it; returns warnings."""
        dids = [
            f"{job.scope}:{f.did_name}" for f in job.stored_files if f.state in ("done", "exists")
        ]
        if not dids:
            return []
        warnings: list[str] = []
        try:
            await datalake.create_dataset(job.scope, job.dataset_name)
        except ConflictError:
            existing = await datalake.get_did(job.scope, job.dataset_name)
            if existing.type != "dataset":
                raise ConflictError(
                    f"{job.dataset} exists and is a {existing.type}, not a dataset"
                ) from None
        try:
            await datalake.attach(job.scope, job.dataset_name, dids)
        except ConflictError:
            # Some are attached already (an earlier import): attach the others one by one.
            for did in dids:
                try:
                    await datalake.attach(job.scope, job.dataset_name, [did])
                except ConflictError:
                    continue
        values = {
            key: metadata[field]
            for field, key in self._settings.metadata_keys.items()
            if metadata.get(field) not in (None, "")
        }
        warnings += await set_metadata_tolerantly(datalake, job.scope, job.dataset_name, values)
        return warnings


async def set_metadata_tolerantly(
    datalake: DatalakePort, scope: str, name: str, values: dict[str, Any]
) -> list[str]:
    """Set metadata keys; a key the Data Lake refuses becomes a warning (the others stay)."""
    if not values:
        return []
    try:
        await datalake.set_metadata(scope, name, values)
        return []
    except (InvalidInputError, BadRequestError):
        pass
    warnings = []
    for key, value in values.items():
        try:
            await datalake.set_metadata(scope, name, {key: value})
        except (InvalidInputError, BadRequestError) as exc:
            warnings.append(f"the Data Lake refused the metadata key {key!r} on {scope}:{name}: "
                            f"{exc.detail}")  # fmt: skip
    return warnings
