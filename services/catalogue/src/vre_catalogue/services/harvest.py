"""The OSSR harvest: pull a Zenodo community into the catalogue, incrementally and idempotently.

A job covers the records whose Zenodo ``updated`` time lies in ``[since, until)``: ``since`` is
the ``until`` of the community's last successful harvest (nothing for the first or a full
harvest), ``until`` is the job's creation time less a settling delay (Zenodo's search index
lags behind its writes). Zenodo lets a query page only through its first 10,000 hits, so a
larger window is cut into date slices, halved until each fits. Each record is a release; a
record seen before with the same ``updated`` time is skipped; a record's own codemeta.json is
preferred to its Zenodo metadata.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog

from vre_catalogue.backends.base import ZenodoRecordsSource
from vre_catalogue.config import ZenodoSourceSettings
from vre_catalogue.errors import HarvestRunningError, VersionExistsError
from vre_catalogue.models import HarvestCreate, HarvestJob
from vre_catalogue.services.access import AccessPolicy
from vre_catalogue.services.codemeta import CodemetaRecord, normalize_doi, validate_codemeta
from vre_catalogue.services.crosswalk import codemeta_from_zenodo
from vre_catalogue.storage.harvest import HarvestCounts, HarvestStore
from vre_catalogue.storage.search import SearchIndex
from vre_catalogue.storage.software import SoftwareStore, utcnow
from vre_common.auth import Principal
from vre_common.db import Database
from vre_common.errors import BackendError, ConflictError, NotFoundError, VreError

log = structlog.get_logger("vre.catalogue.harvest")

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # before Zenodo existed
Outcome = Literal["created", "versions_added", "updated", "unchanged"]


def updated_range(lo: datetime, hi: datetime) -> str:
    """Zenodo query for records updated in ``[lo, hi)`` (UTC; ``q`` may not contain '/')."""

    def fmt(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")

    return f"updated:[{fmt(lo)} TO {fmt(hi)}}}"


def parse_time(value: Any) -> datetime | None:
    """A Zenodo timestamp as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class BackgroundTasks:
    """Tasks that outlive the request that started them; cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``coro`` in the background."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Wait until every task has finished (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel every task and wait for them."""
        for task in list(self._tasks):
            task.cancel()
        await self.wait()


class HarvestService:
    """Starts harvest jobs and runs them in the background."""

    def __init__(
        self,
        *,
        db: Database,
        search: SearchIndex,
        source: ZenodoRecordsSource,
        access: AccessPolicy,
        settings: ZenodoSourceSettings,
        tasks: BackgroundTasks,
        settle: timedelta = timedelta(minutes=5),
    ) -> None:
        self._db = db
        self._search = search
        self._source = source
        self._access = access
        self._settings = settings
        self._tasks = tasks
        self._settle = settle

    async def start(self, user: Principal, request: HarvestCreate) -> HarvestJob:
        """Queue a harvest (curators only) and start it in the background."""
        self._access.require_curator(user, "start a harvest")
        community = request.community or self._settings.community
        async with self._db.transaction() as session:
            jobs = HarvestStore(session)
            running = await jobs.active(community)
            if running is not None:
                raise HarvestRunningError(
                    f"harvest {running.id} of {community} is {running.status}",
                    extra={"job_id": running.id},
                )
            since = None if request.full else await jobs.watermark(community)
            until = utcnow() - self._settle
            if since is not None and until < since:
                until = since
            job = await jobs.create(
                community=community, full=request.full, since=since, until=until, by=user.username
            )
        self._tasks.spawn(self.run(job.id), name=f"harvest-{job.id}")
        return job

    async def get(self, job_id: int) -> HarvestJob:
        """A job with its progress."""
        async with self._db.transaction() as session:
            return await HarvestStore(session).get(job_id)

    async def recent(self, limit: int = 20) -> list[HarvestJob]:
        """The newest jobs."""
        async with self._db.transaction() as session:
            return await HarvestStore(session).recent(limit)

    async def abandon_interrupted(self) -> None:
        """At start: jobs a previous process left unfinished are failed."""
        async with self._db.transaction() as session:
            count = await HarvestStore(session).interrupt_active()
        if count:
            log.warning("harvest_jobs_abandoned", count=count)

    # ----------------------------------------------------------------- the job

    async def run(self, job_id: int) -> None:
        """Run a queued job to its end, recording progress and the outcome."""
        counts = HarvestCounts()
        status, detail = "failed", None
        try:
            async with self._db.transaction() as session:
                job = await HarvestStore(session).get(job_id)
                await HarvestStore(session).start(job_id)
            await self._harvest(job, counts)
            status = "succeeded"
        except asyncio.CancelledError:
            detail = "cancelled (the service stopped)"
            await self._finish(job_id, counts, status, detail)
            raise
        except VreError as exc:
            detail = exc.detail
        except Exception as exc:  # a job must end with a status, whatever happened
            log.exception("harvest_failed", job_id=job_id)
            detail = f"unexpected error: {type(exc).__name__}"
        await self._finish(job_id, counts, status, detail)

    async def _finish(
        self, job_id: int, counts: HarvestCounts, status: str, detail: str | None
    ) -> None:
        async with self._db.transaction() as session:
            await HarvestStore(session).finish(job_id, counts, status=status, detail=detail)
        log.info("harvest_finished", job_id=job_id, status=status, detail=detail)

    async def _harvest(self, job: HarvestJob, counts: HarvestCounts) -> None:
        size = min(self._source.page_size, self._source.result_window)
        window = (self._source.result_window // size) * size  # page × size never passes it
        lo, hi = job.since or EPOCH, job.until
        first = await self._source.search(
            community=job.community, query=updated_range(lo, hi), page=1, size=1
        )
        counts.total = first.total
        await self._progress(job.id, counts)
        async for a, b, total in self._slices(
            job.community, lo, hi, total=first.total, window=window, counts=counts
        ):
            page = 1
            while (page - 1) * size < min(total, window):
                result = await self._source.search(
                    community=job.community, query=updated_range(a, b), page=page, size=size
                )
                counts.pages += 1
                for hit in result.hits:
                    await self._ingest(job.community, hit, counts)
                await self._progress(job.id, counts)
                if len(result.hits) < size:
                    break
                page += 1

    async def _slices(
        self,
        community: str,
        lo: datetime,
        hi: datetime,
        *,
        total: int,
        window: int,
        counts: HarvestCounts,
    ) -> AsyncIterator[tuple[datetime, datetime, int]]:
        """Date slices of ``[lo, hi)`` holding at most ``window`` records each."""
        if total <= window or hi - lo <= timedelta(seconds=1):
            if total > window:
                counts.issue("-", f"{total} records changed within one second: read {window}")
            if total:
                yield lo, hi, total
            return
        mid = lo + (hi - lo) / 2
        for a, b in ((lo, mid), (mid, hi)):
            part = await self._source.search(
                community=community, query=updated_range(a, b), page=1, size=1
            )
            async for piece in self._slices(
                community, a, b, total=part.total, window=window, counts=counts
            ):
                yield piece

    async def _progress(self, job_id: int, counts: HarvestCounts) -> None:
        async with self._db.transaction() as session:
            await HarvestStore(session).progress(job_id, counts)

    # ----------------------------------------------------------------- one record

    async def _ingest(self, community: str, hit: dict[str, Any], counts: HarvestCounts) -> None:
        record_id = str(hit.get("id") or hit.get("recid") or "")
        counts.processed += 1
        if not record_id:
            counts.failed += 1
            counts.issue("?", "a record without an id")
            return
        updated = parse_time(hit.get("updated"))
        async with self._db.transaction() as session:
            known = await SoftwareStore(session, self._search).version_by_record(record_id)
        if known and known.source_updated and updated and known.source_updated >= updated:
            counts.unchanged += 1
            return
        document, note = await self._document(hit)
        outcome = validate_codemeta(document)
        record = outcome.record
        if record is None:
            counts.failed += 1
            counts.issue(record_id, note or "the record has no name/title")
            return
        remarks = [e.msg for e in outcome.errors]
        if note:
            remarks.insert(0, note)
        if remarks:
            counts.issue(
                record_id, f"kept with {len(remarks)} remark(s): " + "; ".join(remarks[:3])
            )
        doi = normalize_doi(str(hit.get("doi") or ""))
        if doi and doi not in record.dois:
            record.dois.append(doi)
        meta = hit.get("metadata") or {}
        version = record.version or str(meta.get("version") or "") or f"zenodo-{record_id}"
        concept = str(hit.get("conceptrecid") or "") or None
        try:
            async with self._db.transaction() as session:
                outcome_kind = await self._store_release(
                    SoftwareStore(session, self._search),
                    community=community,
                    record=record,
                    warnings=[*outcome.errors, *outcome.warnings],
                    version=version,
                    record_id=record_id,
                    concept=concept,
                    updated=updated or utcnow(),
                )
        except (ConflictError, NotFoundError) as exc:
            counts.failed += 1
            counts.issue(record_id, exc.detail)
            return
        setattr(counts, outcome_kind, getattr(counts, outcome_kind) + 1)

    async def _store_release(
        self,
        store: SoftwareStore,
        *,
        community: str,
        record: CodemetaRecord,
        warnings: list[Any],
        version: str,
        record_id: str,
        concept: str | None,
        updated: datetime,
    ) -> Outcome:
        entry = None
        if concept:
            entry = await store.find_by_concept(concept)
        entry = (
            entry or await store.find_by_dois(record.dois) or await store.find_by_name(record.name)
        )
        created = entry is None
        if entry is None:
            software_id = await store.create_entry(
                name=record.name,
                registrant_key=f"harvest:{community}",
                registrant_name=f"zenodo:{community}",
                source="harvest",
                community=community,
                concept_id=concept,
            )
        else:
            software_id = entry.id
            await store.set_provenance(software_id, community=community, concept_id=concept)
        outcome: Outcome
        known = await store.version_by_record(record_id)
        if known is not None:
            if known.version != version and await store.find_version(software_id, version):
                raise VersionExistsError(f"{record.name} {version} is another record already")
            await store.replace_version(
                known.id, record, version=version, warnings=warnings, source_updated=updated
            )
            outcome = "updated"
        else:
            same = await store.find_version(software_id, version)
            if same is not None:
                if same.zenodo_record_id is not None:
                    raise VersionExistsError(
                        f"{record.name} {version} is record {same.zenodo_record_id} already"
                    )
                await store.link_record(
                    same.id, record_id=record_id, source_updated=updated, dois=record.dois
                )
                outcome = "updated"
            else:
                await store.add_version(
                    software_id,
                    record,
                    version=version,
                    source="harvest",
                    warnings=warnings,
                    zenodo_record_id=record_id,
                    source_updated=updated,
                )
                outcome = "created" if created else "versions_added"
        await store.refresh(software_id)
        return outcome

    async def _document(self, hit: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The record's own codemeta.json if it has a usable one, else its Zenodo metadata
        converted; with a note saying why the file was not used."""
        note = None
        for entry in hit.get("files") or []:
            if not isinstance(entry, dict):
                continue
            key = str(entry.get("key") or entry.get("filename") or "")
            if key.lower() != "codemeta.json":
                continue
            links = entry.get("links") or {}
            url = links.get("self") or links.get("download")
            if not isinstance(url, str):
                note = "its codemeta.json has no download link"
                break
            try:
                raw = await self._source.fetch_file(
                    url, max_bytes=self._settings.max_codemeta_bytes
                )
            except BackendError as exc:
                note = f"its codemeta.json could not be read ({exc.detail})"
                break
            checksum = str(entry.get("checksum") or "")
            if checksum.startswith("md5:") and hashlib.md5(raw).hexdigest() != checksum[4:]:  # noqa: S324 - Zenodo's checksum
                note = "its codemeta.json does not match its md5 checksum"
                break
            try:
                document = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                note = "its codemeta.json is not valid JSON"
                break
            if isinstance(document, dict):
                return document, None
            note = "its codemeta.json is not a JSON object"
            break
        if note:
            note += "; its Zenodo metadata was used"
        return codemeta_from_zenodo(hit), note
