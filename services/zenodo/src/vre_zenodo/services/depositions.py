"""DepositionService and DepositionUploader: Data Lake files → Zenodo deposition → DOI.

Rules:
- the files come from DIDs (datasets and containers expanded by the datalake's resolve)
  and/or a workflow run's registered outputs; at most 100 (Zenodo's limit), refused before
  anything is created at Zenodo;
- metadata comes from a catalogue entry's Zenodo block and/or is given (given fields win);
- files stream Data Lake → bucket in the background; each upload is checked: the bytes'
  md5 against the Data Lake's and against what Zenodo answered. A failed upload leaves the
  deposition ``incomplete``: never published; ``POST …/upload`` retries, skipping every file
  Zenodo already holds with the right md5;
- publishing needs every file in the bucket (checked at Zenodo first); the DOI is written
  onto each file's DID (and the DIDs asked for) as metadata; a key the Data Lake refuses
  becomes a warning and a second publish call retries the write-back;
- a published deposition is never discarded; its metadata is changed by edit → update →
  publish (discarding the edit if Zenodo refuses it).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.clients.datalake import ResolvedFile
from vre_common.db import after_commit
from vre_common.errors import InvalidInputError, VreError
from vre_common.jobs import JobSupervisor
from vre_common.policy import Action, ProjectGate
from vre_common.problems import interrupted_problem
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id
from vre_common.provenance.recorder import ServiceEvents
from vre_common.run_record import RunRecord
from vre_zenodo.backends.base import (
    DatalakeConnector,
    DatalakePort,
    RunOutputsPort,
    SoftwareMetadataPort,
    ZenodoDeposition,
    ZenodoPort,
)
from vre_zenodo.config import JobSettings, PublishSettings
from vre_zenodo.errors import (
    ChecksumMismatchError,
    DepositionNotFoundError,
    DepositionStateError,
    TooManyFilesError,
)
from vre_zenodo.models import (
    AccountDeposition,
    Deposition,
    DepositionCreate,
    DepositionSources,
    MetadataUpdate,
    VersionCreate,
)
from vre_zenodo.services.credentials import CredentialService
from vre_zenodo.services.imports import (
    INTERNAL_PROBLEM,
    UnitOfWork,
    problem_of,
    set_metadata_tolerantly,
)
from vre_zenodo.services.jobs import counted
from vre_zenodo.services.run_records import describe, join_record, store_record
from vre_zenodo.storage.depositions import (
    DepositionStore,
    NewDepositionFile,
    StoredDepositionFile,
    StoredDepositionWithFiles,
)

log = structlog.get_logger("vre.zenodo.depositions")

# Metadata a new version must not inherit: the previous version's identifiers.
_IDENTIFIER_KEYS = ("doi", "prereserve_doi", "conceptdoi", "conceptrecid")


def bucket_filenames(files: list[NewDepositionFile | StoredDepositionFile]) -> list[str]:
    """Names in the bucket: the DID name's last part; the full name (``/`` → ``_``) for the
    ones that would clash, prefixed with the scope if they still do."""
    base = [f.name.rsplit("/", 1)[-1] for f in files]
    counts = Counter(base)
    names = [
        b if counts[b] == 1 else f.name.replace("/", "_") for f, b in zip(files, base, strict=True)
    ]
    counts = Counter(names)
    return [f"{f.scope}_{n}" if counts[n] > 1 else n for f, n in zip(files, names, strict=True)]


def _inheritable(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in _IDENTIFIER_KEYS}


class DepositionService:
    """Create, publish, version, edit and discard the caller's depositions."""

    def __init__(
        self,
        *,
        session: AsyncSession,
        store: DepositionStore,
        credentials: CredentialService,
        zenodo: ZenodoPort,
        datalake: DatalakeConnector,
        workflows: RunOutputsPort,
        catalogue: SoftwareMetadataPort,
        supervisor: JobSupervisor,
        uploader: DepositionUploader,
        max_files: int,
        settings: PublishSettings,
        projects: ProjectGate,
        events: ServiceEvents,
    ) -> None:
        self._session = session
        self._projects = projects
        self._events = events
        self._store = store
        self._credentials = credentials
        self._zenodo = zenodo
        self._datalake = datalake
        self._workflows = workflows
        self._catalogue = catalogue
        self._supervisor = supervisor
        self._uploader = uploader
        self._max_files = max_files
        self._settings = settings

    # ------------------------------------------------------------------ reading

    async def _owned(self, user: Principal, deposition_id: str) -> StoredDepositionWithFiles:
        dep = await self._store.get(deposition_id, owner=user.key)
        if dep is None:
            raise DepositionNotFoundError(f"you have no deposition {deposition_id}")
        return dep

    async def get(self, user: Principal, deposition_id: str) -> Deposition:
        """One of the caller's depositions."""
        return (await self._owned(user, deposition_id)).public()

    async def list_mine(self, user: Principal) -> list[Deposition]:
        """The caller's depositions, newest first."""
        return [d.public() for d in await self._store.list_owned(user.key)]

    async def list_at_zenodo(
        self, user: Principal, page: int, size: int
    ) -> list[AccountDeposition]:
        """The depositions of the caller's Zenodo account (made through the VRE or not)."""
        token = await self._credentials.token(user)
        return [
            AccountDeposition(
                zenodo_id=d.id,
                state=d.state,
                submitted=d.submitted,
                title=d.title,
                doi=d.doi,
                record_id=d.record_id,
                html_url=d.html_url,
                files=len(d.files),
            )
            for d in await self._zenodo.list_depositions(token, page=page, size=size)
        ]

    # ------------------------------------------------------------------ sources

    async def _files(
        self, bearer: str, sources: DepositionSources
    ) -> tuple[list[str], list[NewDepositionFile]]:
        """The requested DIDs (with the run's outputs) and the files they resolve to."""
        dids = list(dict.fromkeys(sources.dids))
        if sources.run_id:
            dids += [d for d in await self._workflows.output_dids(bearer, sources.run_id)
                     if d not in dids]  # fmt: skip
        resolved: list[ResolvedFile] = await self._datalake.for_token(bearer).resolve(dids)
        unique: dict[tuple[str, str], ResolvedFile] = {}
        for f in resolved:
            unique.setdefault((f.scope, f.name), f)
        if not unique:
            raise InvalidInputError(
                "the DIDs given resolve to no files",
                errors=[{"loc": ["body", "dids"], "msg": "no files", "type": "value_error"}],
            )
        if len(unique) > self._max_files:
            raise TooManyFilesError(
                f"these DIDs resolve to {len(unique)} files; a Zenodo deposition holds at most "
                f"{self._max_files}. Publish fewer files, or pack them into archives first.",
                errors=[{"loc": ["body", "dids"],
                         "msg": f"{len(unique)} files, at most {self._max_files}",
                         "type": "too_many_files"}],
            )  # fmt: skip
        files = [
            NewDepositionFile(scope=r.scope, name=r.name, filename="", size=r.bytes, md5=r.md5)
            for r in unique.values()
        ]
        for new, filename in zip(files, bucket_filenames(list(files)), strict=True):
            new.filename = filename
        return dids, files

    async def _add_run_record(
        self, bearer: str, run_id: str, dids: list[str], files: list[NewDepositionFile]
    ) -> RunRecord:
        """The run's record into the Data Lake beside its outputs and into ``files``
        (after the publish permission was checked: it writes into the outputs' scope)."""
        record = await self._workflows.run_record(bearer, run_id)
        if len(files) + 1 > self._max_files:
            raise TooManyFilesError(
                f"the run's outputs and its record are {len(files) + 1} files; a Zenodo "
                f"deposition holds at most {self._max_files}. Pack the outputs into archives.",
                errors=[{"loc": ["body", "run_id"],
                         "msg": f"{len(files) + 1} files, at most {self._max_files}",
                         "type": "too_many_files"}],
            )  # fmt: skip
        outputs = [f"{f.scope}:{f.name}" for f in files] or dids
        stored = await store_record(self._datalake.for_token(bearer), record, outputs)
        join_record(files, stored)
        return record

    async def _metadata(self, bearer: str, sources: DepositionSources) -> dict[str, Any]:
        """The catalogue entry's block (if named), overridden by the fields given."""
        metadata: dict[str, Any] = {}
        if sources.software_id:
            metadata.update(
                await self._catalogue.zenodo_metadata(
                    bearer, sources.software_id, sources.software_version
                )
            )
        if sources.metadata is not None:
            metadata.update(sources.metadata.to_zenodo())
        return metadata

    async def _may_publish(
        self,
        user: Principal,
        bearer: str,
        dids: list[str],
        files: list[NewDepositionFile] | list[StoredDepositionFile],
    ) -> None:
        """``publish`` in every project owning a scope of the DIDs (before Zenodo is asked)."""
        scopes = [d.partition(":")[0] for d in dids] + [f.scope for f in files]
        await self._projects.require_all(user, bearer, scopes, Action.PUBLISH)

    def _start_upload(self, dep_id: str, bearer: str, zenodo_token: str) -> None:
        uploader = self._uploader

        async def run() -> None:
            await uploader.run(dep_id, bearer, zenodo_token)

        async def interrupted() -> None:
            await uploader.interrupted(dep_id)

        self._supervisor.start_after_commit(self._session, dep_id, run, interrupted)

    async def _upload_draft(
        self,
        user: Principal,
        bearer: str,
        token: str,
        draft: ZenodoDeposition,
        *,
        metadata: dict[str, Any],
        sources: list[str],
        files: Sequence[NewDepositionFile],
        run_id: str | None,
        software_id: str | None,
        previous: StoredDepositionWithFiles | None = None,
        replace_files: bool = False,
    ) -> Deposition:
        """Record a new Zenodo draft as the user's deposition (a new version of ``previous``)
        and start uploading its files once the request commits."""
        dep = await self._store.create(
            owner=user.key,
            owner_name=user.username,
            zenodo_id=draft.id,
            bucket_url=draft.bucket_url,
            html_url=draft.html_url,
            title=draft.title,
            metadata=draft.metadata or metadata,
            sources=sources,
            run_id=run_id,
            software_id=software_id,
            previous_id=previous.id if previous else None,
            replace_files=replace_files,
            files=files,
            concept_doi=previous.concept_doi if previous else None,
        )
        self._start_upload(dep.id, bearer, token)
        return dep.public()

    # ------------------------------------------------------------------ writing

    async def create(self, user: Principal, bearer: str, request: DepositionCreate) -> Deposition:
        """A new Zenodo draft with metadata; its files upload in the background."""
        token = await self._credentials.token(user)
        dids, files = await self._files(bearer, request)
        await self._may_publish(user, bearer, dids, files)
        metadata = await self._metadata(bearer, request)
        if request.run_id:
            record = await self._add_run_record(bearer, request.run_id, dids, files)
            metadata = describe(metadata, record)
        # Metadata goes with the creation: if Zenodo refuses it, no draft is left behind.
        draft = await self._zenodo.create_deposition(token, metadata)
        return await self._upload_draft(
            user,
            bearer,
            token,
            draft,
            metadata=metadata,
            sources=dids,
            files=files,
            run_id=request.run_id,
            software_id=request.software_id,
        )

    async def _forget_draft(self, token: str, zenodo_id: int) -> None:
        try:
            await self._zenodo.delete_deposition(token, zenodo_id)
        except VreError as exc:  # best effort: the draft stays in the user's Zenodo account
            log.info("draft_cleanup_failed", zenodo_id=zenodo_id, error=type(exc).__name__)

    async def retry_upload(self, user: Principal, bearer: str, deposition_id: str) -> Deposition:
        """Upload what is missing from the bucket again (files already there are kept)."""
        dep = await self._owned(user, deposition_id)
        if dep.state in ("published", "discarded"):
            raise DepositionStateError(f"deposition {dep.id} is {dep.state}: nothing to upload")
        if self._supervisor.running(dep.id):
            return dep.public()
        token = await self._credentials.token(user)
        await self._store.set_state(dep.id, "uploading")
        self._start_upload(dep.id, bearer, token)
        return (await self._owned(user, deposition_id)).public()

    async def publish(self, user: Principal, bearer: str, deposition_id: str) -> Deposition:
        """Publish at Zenodo, then write the DOI onto the Data Lake DIDs."""
        dep = await self._owned(user, deposition_id)
        if dep.state == "published":  # again: finish the DOI write-back if it was refused
            await self._write_doi(dep, bearer)
            return (await self._owned(user, deposition_id)).public()
        if dep.state == "discarded":
            raise DepositionStateError(f"deposition {dep.id} was discarded")
        if dep.state == "uploading" or self._supervisor.running(dep.id):
            raise DepositionStateError(
                f"the files of deposition {dep.id} are still being uploaded; publish when its "
                "state is 'ready'"
            )
        if dep.state != "ready":
            raise DepositionStateError(
                f"deposition {dep.id} is {dep.state}: not every file reached Zenodo; retry the "
                f"upload with POST /depositions/{dep.id}/upload, then publish"
            )
        await self._may_publish(user, bearer, list(dep.sources), dep.stored_files)
        token = await self._credentials.token(user)
        current = await self._zenodo.get_deposition(token, dep.zenodo_id)
        if not (current.submitted and current.doi):
            held = {f.key: f.md5 for f in current.files}
            missing = [
                f.filename
                for f in dep.stored_files
                if f.filename not in held or (f.md5 and held[f.filename] != f.md5)
            ]
            if missing:
                raise DepositionStateError(
                    f"Zenodo does not hold {len(missing)} file(s) of deposition {dep.id} as "
                    f"uploaded ({', '.join(missing[:5])}); retry the upload with "
                    f"POST /depositions/{dep.id}/upload"
                )
            current = await self._zenodo.publish(token, dep.zenodo_id)
        await self._store.mark_published(
            dep.id,
            doi=current.doi,
            record_id=current.record_id or current.id,
            concept_doi=current.concept_doi,
            html_url=current.html_url,
        )
        await self._store.set_metadata(dep.id, current.metadata or dep.metadata, current.title)
        published = await self._owned(user, deposition_id)
        await self._record_publish(user, published)
        await self._write_doi(published, bearer)
        return (await self._owned(user, deposition_id)).public()

    async def _record_publish(self, user: Principal, dep: StoredDepositionWithFiles) -> None:
        """The ``publish`` event, in the transaction that records the publication."""
        if not dep.doi:
            return
        doi = doi_id(dep.doi)
        projects = sorted(
            {s for s in (self._projects.slug_of(f.scope) for f in dep.stored_files) if s}
        )
        attributes: dict[str, str | int | float | bool | None] = {
            "deposition_id": dep.id,
            "zenodo_id": dep.zenodo_id,
        }
        if dep.run_id:
            attributes["run_id"] = dep.run_id
        event = Event.create(
            EventKind.PUBLISH,
            user,
            service="zenodo",
            project=projects[0] if projects else None,
            used=[did_id(f.scope, f.name) for f in dep.stored_files],
            generated=[doi],
            attributes=attributes,
            labels={doi: dep.title} if dep.title else {},
        )
        await self._events.add(self._session, event)
        after_commit(self._session, self._events.wake)

    async def _write_doi(self, dep: StoredDepositionWithFiles, bearer: str) -> None:
        """Set the DOI on every file's DID and on the DIDs asked for; refusals → warnings."""
        if not dep.doi:
            return
        datalake = self._datalake.for_token(bearer)
        values = {self._settings.doi_metadata_key: dep.doi}
        warnings: list[str] = []
        for f in dep.stored_files:
            if f.doi_written:
                continue
            problems = await self._set(datalake, f.scope, f.name, values)
            if problems:
                warnings += problems
            else:
                await self._store.set_file(dep.id, f.position, doi_written=True)
        file_dids = {f.did for f in dep.stored_files}
        for did in dep.sources:
            if did in file_dids:
                continue
            scope, _, name = did.partition(":")
            warnings += await self._set(datalake, scope, name, values)
        await self._store.add_warnings(dep.id, warnings)

    async def _set(
        self, datalake: DatalakePort, scope: str, name: str, values: dict[str, Any]
    ) -> list[str]:
        try:
            return await set_metadata_tolerantly(datalake, scope, name, values)
        except VreError as exc:  # the DOI exists at Zenodo whatever happens here
            return [f"the DOI could not be written on {scope}:{name}: {exc.detail}"]

    async def new_version(
        self, user: Principal, bearer: str, deposition_id: str, request: VersionCreate
    ) -> Deposition:
        """A new version of a published deposition, with new files and/or metadata."""
        previous = await self._owned(user, deposition_id)
        if previous.state != "published":
            raise DepositionStateError(
                f"deposition {previous.id} is {previous.state}; only a published deposition "
                "gets new versions"
            )
        token = await self._credentials.token(user)
        record: RunRecord | None = None
        if request.dids or request.run_id:
            sources, files = await self._files(bearer, request)
            await self._may_publish(user, bearer, sources, files)
            if request.run_id:
                record = await self._add_run_record(bearer, request.run_id, sources, files)
            replace = True
        else:
            sources = list(previous.sources)
            files = [
                NewDepositionFile(
                    scope=f.scope, name=f.name, filename=f.filename, size=f.bytes, md5=f.md5
                )
                for f in previous.stored_files
            ]
            replace = False
        overrides = await self._metadata(bearer, request)
        metadata = _inheritable(previous.metadata)
        if "publication_date" not in overrides:
            metadata.pop("publication_date", None)  # Zenodo dates the new version itself
        metadata.update(overrides)
        if record is not None:
            metadata = describe(metadata, record)
        draft = await self._zenodo.new_version(token, previous.zenodo_id)
        existing = await self._store.find_draft(user.key, draft.id)
        if existing is not None:
            raise DepositionStateError(
                f"Zenodo already has a new-version draft of this record: deposition "
                f"{existing.id} ({existing.state}); publish or discard it first"
            )
        try:
            draft = await self._zenodo.update_metadata(token, draft.id, metadata)
        except VreError:
            await self._forget_draft(token, draft.id)
            raise
        return await self._upload_draft(
            user,
            bearer,
            token,
            draft,
            metadata=metadata,
            sources=sources,
            files=files,
            run_id=request.run_id,
            software_id=request.software_id or previous.software_id,
            previous=previous,
            replace_files=replace,
        )

    async def update_metadata(
        self, user: Principal, deposition_id: str, request: MetadataUpdate
    ) -> Deposition:
        """Change metadata: of a draft directly; of a published record by edit → publish."""
        dep = await self._owned(user, deposition_id)
        if dep.state == "discarded":
            raise DepositionStateError(f"deposition {dep.id} was discarded")
        token = await self._credentials.token(user)
        metadata = {
            k: v for k, v in dep.metadata.items() if k != "prereserve_doi"
        } | request.metadata.to_zenodo()
        if dep.state == "published":
            await self._zenodo.edit(token, dep.zenodo_id)
            try:
                await self._zenodo.update_metadata(token, dep.zenodo_id, metadata)
                current = await self._zenodo.publish(token, dep.zenodo_id)
            except VreError:
                try:
                    await self._zenodo.discard(token, dep.zenodo_id)
                except VreError as exc:
                    log.info("edit_discard_failed", deposition=dep.id, error=type(exc).__name__)
                raise
        else:
            current = await self._zenodo.update_metadata(token, dep.zenodo_id, metadata)
        await self._store.set_metadata(dep.id, current.metadata or metadata, current.title)
        return (await self._owned(user, deposition_id)).public()

    async def discard(self, user: Principal, deposition_id: str) -> None:
        """Delete an unpublished draft at Zenodo and mark it discarded."""
        dep = await self._owned(user, deposition_id)
        if dep.state == "published":
            raise DepositionStateError(
                f"deposition {dep.id} is published: Zenodo keeps published records; make a new "
                "version instead"
            )
        if dep.state == "discarded":
            return
        await self._supervisor.cancel(dep.id)
        token = await self._credentials.token(user)
        with contextlib.suppress(DepositionNotFoundError):  # already gone at Zenodo
            await self._zenodo.delete_deposition(token, dep.zenodo_id)
        await self._store.set_state(dep.id, "discarded")


class DepositionUploader:
    """Streams a deposition's files from the Data Lake into its bucket (background job)."""

    def __init__(
        self,
        *,
        unit: UnitOfWork,
        zenodo: ZenodoPort,
        datalake: DatalakeConnector,
        jobs: JobSettings,
    ) -> None:
        self._unit = unit
        self._zenodo = zenodo
        self._datalake = datalake
        self._interval = jobs.progress_interval_seconds

    async def _load(self, dep_id: str) -> StoredDepositionWithFiles:
        async with self._unit() as session:
            dep = await DepositionStore(session).get(dep_id)
        if dep is None:
            raise DepositionNotFoundError(f"deposition {dep_id} vanished")
        return dep

    async def _set_file(self, dep_id: str, position: int, **values: Any) -> None:
        async with self._unit() as session:
            await DepositionStore(session).set_file(dep_id, position, **values)

    async def _set_state(
        self, dep_id: str, state: Any, error: dict[str, Any] | None = None
    ) -> None:
        async with self._unit() as session:
            await DepositionStore(session).set_state(dep_id, state, error=error)

    async def interrupted(self, dep_id: str) -> None:
        """Record that the upload was cancelled (shutdown, or a discard)."""
        dep = await self._load(dep_id)
        if dep.state != "uploading":
            return
        for f in dep.stored_files:
            if f.state == "uploading":
                await self._set_file(dep_id, f.position, state="failed", error="interrupted")
        await self._set_state(
            dep_id,
            "incomplete",
            interrupted_problem(
                f"the upload was interrupted; retry it with POST /depositions/{dep_id}/upload"
            ),
        )

    async def run(self, dep_id: str, bearer: str, zenodo_token: str) -> None:
        """Upload every file the bucket lacks; ``ready`` when all are there."""
        dep = await self._load(dep_id)
        try:
            await self._sync(dep, bearer, zenodo_token)
        except VreError as exc:
            log.info("deposition_upload_failed", deposition=dep_id, error=type(exc).__name__)
            await self._set_state(dep_id, "incomplete", problem_of(exc))
            return
        except Exception:
            log.exception("deposition_upload_crashed", deposition=dep_id)
            await self._set_state(dep_id, "incomplete", INTERNAL_PROBLEM)
            return
        await self._set_state(dep_id, "ready")

    async def _sync(self, dep: StoredDepositionWithFiles, bearer: str, token: str) -> None:
        datalake = self._datalake.for_token(bearer)
        current = await self._zenodo.get_deposition(token, dep.zenodo_id)
        bucket = current.bucket_url or dep.bucket_url
        if not bucket:
            raise DepositionStateError(f"Zenodo gives no bucket for deposition {dep.zenodo_id}")
        held = {f.key: f.md5 for f in current.files}
        wanted = {f.filename for f in dep.stored_files}
        if dep.replace_files:
            for key in held:
                if key not in wanted:
                    await self._zenodo.delete_file(token, bucket, key)
        for f in dep.stored_files:
            if f.md5 and held.get(f.filename) == f.md5:
                if f.state != "uploaded":
                    await self._set_file(dep.id, f.position, state="uploaded", bytes_done=f.bytes)
                continue
            try:
                await self._upload(dep.id, f, datalake, token, bucket)
            except VreError as exc:
                await self._set_file(dep.id, f.position, state="failed", error=exc.detail)
                raise

    async def _upload(
        self,
        dep_id: str,
        f: StoredDepositionFile,
        datalake: DatalakePort,
        token: str,
        bucket: str,
    ) -> None:
        await self._set_file(dep_id, f.position, state="uploading", bytes_done=0)
        digest = hashlib.md5(usedforsecurity=False)

        async def hashed(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
            async for chunk in chunks:
                digest.update(chunk)
                yield chunk

        async def progress(done: int) -> None:
            await self._set_file(dep_id, f.position, bytes_done=done)

        async with datalake.download(f.scope, f.name) as source:
            answer = await self._zenodo.upload_file(
                token,
                bucket,
                f.filename,
                counted(hashed(source.iter_bytes()), progress, self._interval),
                size=f.bytes,
            )
        sent = digest.hexdigest()
        if (f.md5 and sent != f.md5) or answer.md5 != sent:
            await self._zenodo.delete_file(token, bucket, f.filename)
            raise ChecksumMismatchError(
                f"{f.did}: the Data Lake records md5 {f.md5}, the bytes read have {sent}, "
                f"Zenodo stored {answer.md5}"
            )
        await self._set_file(
            dep_id, f.position, state="uploaded", bytes_done=answer.size, md5=f.md5 or sent
        )
