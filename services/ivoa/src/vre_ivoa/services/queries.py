"""QueryService and QueryRunner: queries at VO services as jobs, results into the Data Lake.

Rules:
- everything that can be checked is checked before a VO service is contacted: the service
  exists and its type fits the parameters (ADQL for TAP, a cone for SCS, SIA parameters for
  SIA v2; uploads only for TAP), ADQL length, MAXREC and time within the deployment's limits,
  the caller may write the destination scope (and read the upload's), the destination DID is
  free, the upload is a readable table within the row limit;
- ``mode=sync`` (and ``auto`` for small queries without upload) runs inside the request, on
  the TAP service's synchronous endpoint, and answers 201 with the finished job — or the
  problem that ended it (the job keeps it too); ``async`` answers 202 at once and runs in the
  background, on the TAP service's UWS endpoint (EXECUTIONDURATION = the time allowed);
- the result table is converted to the requested format and written into the Data Lake as
  the caller (their token), then described with metadata (service, query, rows, time,
  format); a provenance event joins the job's completion; on any failure, nothing is written;
- cancelling a job stops it, aborts its UWS job at the service and leaves nothing written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.clients.datalake import DatalakeClient, DidRef
from vre_common.db import utcnow
from vre_common.errors import (
    BadRequestError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ServiceNotConfiguredError,
    VreError,
    problem_type_uri,
)
from vre_common.jobs import JobSupervisor
from vre_common.policy import Action, ProjectGate
from vre_common.problems import internal_problem, stored_problem
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id
from vre_common.provenance.recorder import ServiceEvents
from vre_ivoa.backends.base import ResultDocument, TableUpload, VoServicePort
from vre_ivoa.config import LimitSettings, VoServiceConfig
from vre_ivoa.errors import (
    QueryNotFoundError,
    QueryRejectedError,
    QueryStateError,
    VoServiceError,
)
from vre_ivoa.models import (
    EXTENSIONS,
    FINAL_PHASES,
    Cone,
    Query,
    QueryCreate,
    QueryResult,
    SiaParameters,
)
from vre_ivoa.services.catalog import ServiceCatalog
from vre_ivoa.services.tables import serialise, upload_votable
from vre_ivoa.storage.queries import NewQuery, QueryStore, StoredQuery

log = structlog.get_logger("vre.ivoa.queries")

UnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncSession]]
NAME_TEMPLATE = "ivoa/{service}-{{id}}.{ext}"
METADATA_QUERY_CHARS = 4000


def _internal_problem(exc: BaseException) -> dict[str, Any]:
    """An unexpected error as kept on the job: its kind only (the rest is in the log)."""
    return internal_problem(
        f"the query stopped on an unexpected error ({type(exc).__name__}); the service's log "
        "has the details"
    )


def problem_of(exc: VreError) -> dict[str, Any]:
    """An error as a problem document (stored on jobs, with its extension members)."""
    return stored_problem(exc)


def _field_error(field: str, message: str, detail: str | None = None) -> InvalidInputError:
    return InvalidInputError(
        detail or f"{field}: {message}",
        errors=[{"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}],
    )


def describe(body: QueryCreate, service_type: str) -> tuple[str, dict[str, Any]]:
    """The query as text (stored, shown, written as metadata) and its parameters."""
    if service_type == "tap":
        return (body.adql or "").strip(), {}
    if service_type == "scs" and body.cone is not None:
        cone = body.cone.model_dump()
        return f"CONE ra={body.cone.ra} dec={body.cone.dec} radius={body.cone.radius}", cone
    assert body.sia is not None  # validated before
    sia = body.sia.model_dump(exclude_none=True)
    text = f"SIA POS=CIRCLE {body.sia.ra} {body.sia.dec} {body.sia.radius}"
    if body.sia.band:
        text += f" BAND={body.sia.band[0]} {body.sia.band[1]}"
    return text, sia


class QueryService:
    """Start queries, show them to their owner, cancel them."""

    def __init__(
        self,
        *,
        unit: UnitOfWork,
        catalog: ServiceCatalog,
        runner: QueryRunner,
        supervisor: JobSupervisor,
        projects: ProjectGate,
        datalake: DatalakeClient | None,
        limits: LimitSettings,
        default_rse: str | None,
    ) -> None:
        self._unit = unit
        self._catalog = catalog
        self._runner = runner
        self._supervisor = supervisor
        self._projects = projects
        self._datalake = datalake
        self._limits = limits
        self._default_rse = default_rse

    # ------------------------------------------------------------------ validation

    def _validate(self, body: QueryCreate, config: VoServiceConfig) -> tuple[int, float]:
        limits = self._limits
        given = {
            name: getattr(body, name) is not None for name in ("adql", "cone", "sia", "upload")
        }
        wanted = {"tap": "adql", "scs": "cone", "sia2": "sia"}[config.type]
        if not given[wanted]:
            raise _field_error(
                wanted, f"required for the {config.type} service {config.name}",
                f"{config.name} is a {config.type} service: give `{wanted}`",
            )  # fmt: skip
        for name in ("adql", "cone", "sia"):
            if name != wanted and given[name]:
                raise _field_error(name, f"not used by the {config.type} service {config.name}")
        if given["upload"] and config.type != "tap":
            raise _field_error("upload", "table uploads need a TAP service")
        if body.adql is not None:
            if not body.adql.strip():
                raise _field_error("adql", "empty query")
            if len(body.adql) > limits.max_query_chars:
                raise _field_error(
                    "adql", f"longer than {limits.max_query_chars} characters",
                    f"the ADQL has {len(body.adql)} characters; at most "
                    f"{limits.max_query_chars} are accepted",
                )  # fmt: skip
            if "\x00" in body.adql:
                raise _field_error("adql", "contains a NUL character")
        maxrec = body.maxrec or limits.max_rows
        if maxrec > limits.max_rows:
            raise _field_error(
                "maxrec", f"at most {limits.max_rows}",
                f"maxrec {maxrec} exceeds this deployment's limit of {limits.max_rows} rows",
            )  # fmt: skip
        timeout = body.timeout_seconds or limits.max_seconds
        if timeout > limits.max_seconds:
            raise _field_error(
                "timeout_seconds", f"at most {limits.max_seconds:g}",
                f"timeout_seconds {timeout:g} exceeds this deployment's limit of "
                f"{limits.max_seconds:g} s",
            )  # fmt: skip
        return maxrec, timeout

    def _client(self, bearer: str) -> DatalakeClient:
        if self._datalake is None:
            raise ServiceNotConfiguredError(
                "the datalake service is not configured (VRE_IVOA_DATALAKE__URL): results "
                "cannot be written"
            )
        return self._datalake.with_token(bearer)

    async def _check_destination(self, datalake: DatalakeClient, scope: str, name: str) -> None:
        try:
            await datalake.get_did(scope, name)
        except NotFoundError:
            return
        raise ConflictError(
            f"{scope}:{name} already exists in the Data Lake; choose another destination name",
            errors=[{"loc": ["body", "destination", "name"], "msg": "exists",
                     "type": "value_error"}],
        )  # fmt: skip

    # ------------------------------------------------------------------ operations

    async def start(self, user: Principal, bearer: str, body: QueryCreate) -> tuple[Query, bool]:
        """Validate, record and run (sync) or start (async) a query; (job, finished?)."""
        config = self._catalog.config(body.service, field=["body", "service"])
        maxrec, timeout = self._validate(body, config)
        destination = body.destination
        scope = destination.scope or self._projects.scope_of(destination.project or "")
        await self._projects.require(user, bearer, scope, Action.DATA_WRITE)
        if body.upload is not None:
            upload_scope = DidRef.parse(body.upload.did).scope
            await self._projects.require(user, bearer, upload_scope, Action.DATA_READ)
        datalake = self._client(bearer)
        if destination.name is not None:
            await self._check_destination(datalake, scope, destination.name)
        sync = body.mode == "sync" or (
            body.mode == "auto" and body.upload is None and maxrec <= self._limits.sync_max_rows
        )
        if sync:
            timeout = min(timeout, self._limits.sync_max_seconds)
        text, parameters = describe(body, config.type)
        template = NAME_TEMPLATE.format(service=config.name, ext=EXTENSIONS[destination.format])
        async with self._unit() as session:
            job = await QueryStore(session).create(
                NewQuery(
                    owner=user.key,
                    owner_name=user.username,
                    service=config.name,
                    service_type=config.type,
                    query=text,
                    parameters=parameters,
                    upload=body.upload.did if body.upload else None,
                    upload_table=body.upload.table_name if body.upload else None,
                    maxrec=maxrec,
                    timeout_seconds=timeout,
                    mode="sync" if sync else "async",
                    scope=scope,
                    name=destination.name,
                    format=destination.format,
                    rse=destination.rse or self._default_rse,
                    project=self._projects.slug_of(scope),
                ),
                name_template=template,
            )
        runner = self._runner
        if sync:
            await runner.run(job.id, bearer, raise_errors=True)
            return await self.get(user, job.id), True

        async def run() -> None:
            await runner.run(job.id, bearer)

        async def cancelled() -> None:
            await runner.cancelled(job.id)

        self._supervisor.start(job.id, run, cancelled)
        return job.public(), False

    async def get(self, user: Principal, query_id: str) -> Query:
        """One of the caller's queries."""
        return (await self._own(user, query_id)).public()

    async def _own(self, user: Principal, query_id: str) -> StoredQuery:
        async with self._unit() as session:
            job = await QueryStore(session).get(query_id, owner=user.key)
        if job is None:
            raise QueryNotFoundError(f"you have no query {query_id}")
        return job

    async def list_mine(self, user: Principal) -> list[Query]:
        """The caller's queries, newest first."""
        async with self._unit() as session:
            jobs = await QueryStore(session).list_owned(user.key)
        return [j.public() for j in jobs]

    async def cancel(self, user: Principal, query_id: str) -> Query:
        """Stop an active query (its UWS job is aborted); 409 once it has ended."""
        job = await self._own(user, query_id)
        if job.phase in FINAL_PHASES:
            raise QueryStateError(f"query {query_id} has already ended ({job.phase})")
        if not await self._supervisor.cancel(query_id):
            # Not running in this process (a sync query of another request): mark it; the
            # request that runs it finds the phase final and writes nothing.
            await self._runner.cancelled(query_id)
        return await self.get(user, query_id)


class QueryRunner:
    """Runs one query job: the service, the conversion, the Data Lake, the provenance."""

    def __init__(
        self,
        *,
        unit: UnitOfWork,
        catalog: ServiceCatalog,
        datalake: DatalakeClient | None,
        projects: ProjectGate,
        events: ServiceEvents,
        limits: LimitSettings,
    ) -> None:
        self._unit = unit
        self._catalog = catalog
        self._datalake = datalake
        self._projects = projects
        self._events = events
        self._limits = limits

    async def _load(self, query_id: str) -> StoredQuery:
        async with self._unit() as session:
            job = await QueryStore(session).get(query_id)
        if job is None:
            raise QueryNotFoundError(f"query {query_id} vanished")
        return job

    async def _finish(self, query_id: str, phase: str, **values: Any) -> bool:
        async with self._unit() as session:
            return await QueryStore(session).finish(query_id, phase, **values)

    async def cancelled(self, query_id: str) -> None:
        """Record that the job was cancelled (by its owner, or the service's shutdown)."""
        job = await self._load(query_id)
        if job.remote_job:
            client = self._catalog.client(job.service)
            await client.tap_abort(job.remote_job)
        await self._finish(
            query_id,
            "ABORTED",
            error={
                "type": problem_type_uri("aborted"),
                "title": "Aborted",
                "status": 409,
                "detail": "the query was cancelled before it completed; nothing was written",
            },
        )

    async def run(self, query_id: str, bearer: str, *, raise_errors: bool = False) -> None:
        """Run the job to its end and record the outcome (``raise_errors``: also raise it)."""
        async with self._unit() as session:
            await QueryStore(session).update(query_id, phase="EXECUTING", started_at=utcnow())
        job = await self._load(query_id)
        started = time.monotonic()
        try:
            if self._datalake is None:
                raise ServiceNotConfiguredError("the datalake service is not configured")
            datalake = self._datalake.with_token(bearer)
            client = self._catalog.client(job.service)
            upload = await self._upload(job, datalake) if job.upload else None
            document = await self._execute(job, client, upload)
            seconds = time.monotonic() - started
            await self._write(job, datalake, document, seconds)
        except VreError as exc:
            log.info("query_failed", query_id=query_id, error=type(exc).__name__)
            await self._finish(
                query_id,
                "ERROR",
                error=problem_of(exc),
                execution_seconds=time.monotonic() - started,
            )
            if raise_errors:
                raise
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await self.cancelled(query_id)
            raise
        except Exception as exc:
            log.exception("query_crashed", query_id=query_id)
            await self._finish(query_id, "ERROR", error=_internal_problem(exc))
            if raise_errors:
                raise

    async def _upload(self, job: StoredQuery, datalake: DatalakeClient) -> TableUpload:
        """The upload DID's bytes (bounded), as a VOTable."""
        assert job.upload is not None
        ref = DidRef.parse(job.upload)
        chunks: list[bytes] = []
        size = 0
        async with datalake.download(ref.scope, ref.name) as body:
            if body.size is not None and body.size > self._limits.max_upload_bytes:
                raise _field_error(
                    "upload.did", f"larger than {self._limits.max_upload_bytes} bytes",
                    f"{job.upload} has {body.size} bytes; uploads are limited to "
                    f"{self._limits.max_upload_bytes}",
                )  # fmt: skip
            async for chunk in body.iter_bytes():
                size += len(chunk)
                if size > self._limits.max_upload_bytes:
                    raise _field_error(
                        "upload.did", f"larger than {self._limits.max_upload_bytes} bytes"
                    )
                chunks.append(chunk)
        votable = await anyio.to_thread.run_sync(
            lambda: upload_votable(
                b"".join(chunks), ref.name, self._limits.max_upload_rows, "upload.did"
            )
        )
        return TableUpload(name=job.upload_table or "upload", votable=votable)

    async def _execute(
        self, job: StoredQuery, client: VoServicePort, upload: TableUpload | None
    ) -> ResultDocument:
        if job.service_type == "scs":
            cone = Cone.model_validate(job.parameters)
            return await client.cone(cone, maxrec=job.maxrec, seconds=job.timeout_seconds)
        if job.service_type == "sia2":
            sia = SiaParameters.model_validate(job.parameters)
            return await client.sia(sia, maxrec=job.maxrec, seconds=job.timeout_seconds)
        if job.mode == "sync":
            return await client.tap_sync(
                job.query, maxrec=job.maxrec, upload=upload, seconds=job.timeout_seconds
            )
        return await self._execute_async(job, client, upload)

    async def _execute_async(
        self, job: StoredQuery, client: VoServicePort, upload: TableUpload | None
    ) -> ResultDocument:
        """A UWS job at the service: submit, wait (bounded), fetch; aborted on any failure."""
        deadline = time.monotonic() + job.timeout_seconds
        job_url = await client.tap_submit(
            job.query, maxrec=job.maxrec, upload=upload, seconds=job.timeout_seconds
        )
        async with self._unit() as session:
            await QueryStore(session).update(job.id, remote_job=job_url)
        try:
            phase = await client.tap_wait(job_url, seconds=max(0.1, deadline - time.monotonic()))
            if phase == "ERROR":
                message = await client.tap_error(job_url)
                raise QueryRejectedError(
                    f"{job.service} refused the query: {message}",
                    errors=[{"loc": ["body", "adql"], "msg": message[:2000],
                             "type": "vo_service"}],
                    extra={"service_message": message[:2000]},
                )  # fmt: skip
            if phase == "ABORTED":
                raise VoServiceError(
                    f"{job.service} aborted the query (its own limits, or an operator)"
                )
            return await client.tap_result(job_url)
        finally:
            # Done, failed, timed out or cancelled: the job is deleted at the service (UWS
            # DELETE aborts it if it still runs) and forgotten here.
            with anyio.CancelScope(shield=True):
                await client.tap_abort(job_url)
                async with self._unit() as session:
                    await QueryStore(session).update(job.id, remote_job=None)

    async def _write(
        self, job: StoredQuery, datalake: DatalakeClient, document: ResultDocument, seconds: float
    ) -> None:
        """Convert, write into the Data Lake, describe, record; nothing written on failure."""
        current = await self._load(job.id)
        if current.phase != "EXECUTING":  # cancelled meanwhile
            return
        serialised = await anyio.to_thread.run_sync(
            lambda: serialise(document.votable, job.format, job.maxrec)
        )
        truncated = document.truncated or document.rows > job.maxrec
        uploaded = await datalake.upload(job.scope, job.name, serialised.data, rse=job.rse)
        finished = utcnow()
        config = self._catalog.config(job.service)
        metadata: dict[str, Any] = {
            "ivoa_service": job.service,
            "ivoa_service_url": config.url,
            "ivoa_query": job.query[:METADATA_QUERY_CHARS],
            "ivoa_rows": serialised.rows,
            "ivoa_query_time": finished.isoformat(),
            "ivoa_format": job.format,
            "ivoa_query_id": job.id,
            "ivoa_truncated": truncated,
        }
        if job.upload:
            metadata["ivoa_upload"] = job.upload
        warnings = await _set_metadata_tolerantly(datalake, job.scope, job.name, metadata)
        if truncated:
            warnings.append(
                f"the result was cut at {job.maxrec} rows (MAXREC); ask for more rows or a "
                "narrower query"
            )
        result = QueryResult(
            did=f"{job.scope}:{job.name}",
            rows=serialised.rows,
            columns=serialised.columns,
            bytes=uploaded.bytes,
            format=job.format,
            truncated=truncated,
        )
        async with self._unit() as session:
            ended = await QueryStore(session).finish(
                job.id,
                "COMPLETED",
                result=result.model_dump(mode="json"),
                warnings=warnings,
                execution_seconds=seconds,
                remote_job=None,
            )
            if ended:
                await self._events.add(session, self._event(job, config, result))
        self._events.wake()

    def _event(self, job: StoredQuery, config: VoServiceConfig, result: QueryResult) -> Event:
        """The ``query`` event, recorded in the transaction of the job's COMPLETED phase.

        It *used* the VO service (its IVOA identifier, else its URL) and the uploaded
        table's DID, and *generated* the result DID; its attributes carry the query id, the
        service, its type, the query text, the row count and the format.
        """
        service_id = config.ivoid or config.url
        used = [service_id]
        if job.upload:
            ref = DidRef.parse(job.upload)
            used.append(did_id(ref.scope, ref.name))
        generated = did_id(job.scope, job.name)
        return Event.create(
            EventKind.QUERY,
            job.owner_key,
            service="ivoa",
            project=self._projects.slug_of(job.scope),
            used=used,
            generated=[generated],
            attributes={
                "query_id": job.id,
                "service": job.service,
                "service_type": job.service_type,
                "query": job.query[:METADATA_QUERY_CHARS],
                "rows": result.rows,
                "format": result.format,
            },
            labels={service_id: config.title or config.name, generated: job.name},
        ).model_copy(update={"actor_name": job.owner})


async def _set_metadata_tolerantly(
    datalake: DatalakeClient, scope: str, name: str, values: dict[str, Any]
) -> list[str]:
    """Set metadata keys; a key the Data Lake refuses becomes a warning (the others stay)."""
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
            warnings.append(f"the Data Lake refused the metadata key {key!r}: {exc.detail}")
    return warnings


__all__ = ["QueryRunner", "QueryService", "problem_of"]
