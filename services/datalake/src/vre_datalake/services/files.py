"""Moving file bytes: streaming upload with checksums, verified download, dataset archives.

Upload: the body is checksummed (adler32, md5) while it is written under a temporary name
next to the file's final PFN; only when every byte is on the storage, the announced md5
matches and the quota allows it is the file moved into place and registered in Rucio. Any
failure — including the client going away — removes what was written and registers nothing.
One exception: when Rucio goes away during the registration itself, its outcome is unknown
(the replica may be registered already, and Rucio's policy lets nobody delete a replica
through its API). The bytes are then kept and the registration settled in the background
once Rucio answers again: finished (the rule added) if the replica is there, the bytes
removed if it is not. Either way nothing is left half done.
A registered upload (and the attachment to a dataset) is reported as a provenance event,
recorded pending just before Rucio is changed and ready right after.

Download: a replica is chosen (preferred RSEs first), streamed in chunks; full reads are
adler32-checked on the way and the last chunk is held back until the check passes, so a
corrupt replica ends in a broken connection, never in a silently wrong file.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import tarfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import structlog

from vre_common.errors import BadRequestError, InvalidInputError, QuotaExceededError, VreError
from vre_common.provenance import EventKind, did_id
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.checksums import Adler32, Checksummer, etag_for
from vre_datalake.config import StorageSettings
from vre_datalake.errors import (
    ChecksumMismatchError,
    ContentConflictError,
    DidExistsError,
    DidNotFoundError,
    QuotaError,
    RangeNotSatisfiableError,
    ReplicaNotFoundError,
    RseNotFoundError,
    StorageError,
)
from vre_datalake.models import Did, DidRef, FileReplicas, Replica, UploadedFile
from vre_datalake.names import check_name, check_rse, parse_did
from vre_datalake.services.dids import primed
from vre_datalake.services.policy import ScopeAction, ScopePolicy
from vre_datalake.services.provenance import ProvenanceRecorder
from vre_datalake.storage.base import StorageRouter

log = structlog.get_logger("vre.datalake.files")

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HASH_IN_THREAD = 256 * 1024
SETTLE_FIRST_DELAY = 0.5  # seconds between attempts to settle a lost registration: doubling…
SETTLE_MAX_DELAY = 5.0  # …up to this (one cheap call to a Rucio that may be back)
SETTLE_GIVE_UP = 24 * 3600.0  # then the case is left to an operator (logged, bytes kept)


def outcome_lost(exc: BaseException) -> bool:
    """Whether a registration that failed with ``exc`` may still have happened in Rucio.

    Rucio unreachable, too slow or failing (5xx), or the request cancelled while a call was
    out: the call may have been done by Rucio. A 4xx answer is Rucio's refusal.
    """
    if isinstance(exc, QuotaExceededError):  # 507, but Rucio's answer, not an outage
        return False
    if isinstance(exc, VreError):
        return exc.status >= 500
    return not isinstance(exc, Exception)  # cancelled (the client went away)


class _NotRegisteredError(Exception):
    """Rucio has no replica of an upload whose registration outcome was lost."""


@dataclass
class FileDownload:
    """What a download answers: status, headers and the body stream."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes] | None
    media_type: str = "application/octet-stream"


@dataclass
class _UploadPlan:
    """Where an upload goes, decided before its body is read."""

    did: DidRef
    rse: str
    pfn: str
    existing: Did | None
    dataset: DidRef | None
    writer: Actor  # who writes the file: the caller, or the project's account
    dataset_writer: Actor | None


@dataclass
class UploadRequest:
    """An upload as the handler parsed it."""

    scope: str
    name: str
    rse: str | None
    content_length: int | None
    expected_md5: str | None
    dataset: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single ``bytes=`` range; None for the whole file.

    Multiple ranges and other units are ignored (the whole file is sent, as RFC 9110
    allows); an unsatisfiable range raises 416.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiableError(size)
        return max(0, size - count), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiableError(size)
    return start, min(end, size - 1)


async def _hashing(
    source: AsyncIterator[bytes], sums: Checksummer, chunk_size: int
) -> AsyncIterator[bytes]:
    """Re-chunk ``source`` to ``chunk_size`` and checksum each chunk (large ones in a thread)."""
    buffer = bytearray()
    async for piece in source:
        buffer += piece
        if len(buffer) >= chunk_size:
            chunk = bytes(buffer)
            buffer.clear()
            await anyio.to_thread.run_sync(sums.update, chunk)
            yield chunk
    if buffer:
        chunk = bytes(buffer)
        if len(chunk) >= _HASH_IN_THREAD:
            await anyio.to_thread.run_sync(sums.update, chunk)
        else:
            sums.update(chunk)
        yield chunk


async def verified(
    stream: AsyncIterator[bytes], *, adler32: str | None, size: int | None, what: str
) -> AsyncIterator[bytes]:
    """Pass ``stream`` through, holding back the last chunk until size and adler32 match."""
    check = Adler32()
    count = 0
    pending: bytes | None = None
    async for chunk in stream:
        if pending is not None:
            yield pending
        if len(chunk) >= _HASH_IN_THREAD:
            await anyio.to_thread.run_sync(check.update, chunk)
        else:
            check.update(chunk)
        count += len(chunk)
        pending = chunk
    if (size is not None and count != size) or (adler32 and check.hexdigest != adler32):
        log.error("replica_corrupt", did=what, expected=adler32, got=check.hexdigest, size=count)
        raise StorageError(f"the replica of {what} does not match its checksum; aborted")
    if pending is not None:
        yield pending


class FileService:
    """Uploads, downloads, archives and replica listings."""

    def __init__(
        self,
        *,
        backend: DatalakeBackend,
        policy: ScopePolicy,
        storage: StorageRouter,
        settings: StorageSettings,
        storage_token: Callable[[Actor], str | None],
        recorder: ProvenanceRecorder,
    ) -> None:
        self._backend = backend
        self._policy = policy
        self._storage = storage
        self._settings = settings
        self._storage_token = storage_token
        self._recorder = recorder
        self._settling: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Stop settling lost registrations (their bytes stay; each is logged)."""
        for task in list(self._settling):
            task.cancel()
        if self._settling:
            await asyncio.wait(list(self._settling))

    # ------------------------------------------------------------------ upload

    async def _choose_rse(self, actor: Actor, rse: str | None) -> str:
        if rse:
            return check_rse(rse, "rse")
        if self._settings.default_rse:
            return self._settings.default_rse
        for candidate in await self._backend.list_rses(actor):
            if candidate.availability_write and any(
                self._storage.supports_scheme(s) for s in candidate.schemes
            ):
                return candidate.name
        raise InvalidInputError(
            "no writable RSE: name one with ?rse=",
            errors=[{"loc": ["query", "rse"], "msg": "required here", "type": "missing"}],
        )

    async def _existing(self, actor: Actor, scope: str, name: str) -> Did | None:
        try:
            return await self._backend.get_did(actor, scope, name)
        except DidNotFoundError:
            return None

    async def _check_quota(self, actor: Actor, rse: str, size: int) -> None:
        for usage in await self._backend.account_usage(actor):
            if usage.rse == rse:
                if usage.limit_bytes is None or usage.used_bytes + size > usage.limit_bytes:
                    raise QuotaError(
                        rse,
                        limit_bytes=usage.limit_bytes,
                        used_bytes=usage.used_bytes,
                        requested_bytes=size,
                    )
                return
        raise QuotaError(rse, limit_bytes=None, used_bytes=None, requested_bytes=size,
                         detail=f"your account has no quota on {rse}")  # fmt: skip

    async def _has_replica(self, actor: Actor, did: DidRef, rse: str) -> bool:
        async for item in self._backend.iter_replicas(actor, [did], all_states=True):
            if any(r.rse == rse and r.state == "AVAILABLE" for r in item.replicas):
                return True
        return False

    async def _prepare_dataset(self, actor: Actor, dataset: str) -> tuple[DidRef, Actor]:
        ds_scope, ds_name = parse_did(dataset, "dataset")
        writer = await self._policy.authorize(actor, ds_scope, ScopeAction.WRITE)
        existing = await self._existing(writer, ds_scope, ds_name)
        if existing is None:
            await self._backend.add_collection(
                writer, ds_scope, ds_name, "dataset", metadata={}, lifetime=None
            )
        elif existing.type != "dataset":
            raise InvalidInputError(
                f"{dataset} is a {existing.type}, not a dataset",
                errors=[{"loc": ["query", "dataset"], "msg": "not a dataset", "type": "value"}],
            )
        return DidRef(scope=ds_scope, name=ds_name), writer

    async def _plan(self, actor: Actor, request: UploadRequest) -> _UploadPlan:
        """Every check that can be made before a byte is read (fail early, store nothing)."""
        scope, name = request.scope, check_name(request.name)
        writer = await self._policy.authorize(actor, scope, ScopeAction.WRITE)
        rse = await self._choose_rse(writer, request.rse)
        did = DidRef(scope=scope, name=name)
        try:
            pfn = await self._backend.pfn_for_write(writer, rse, scope, name)
        except RseNotFoundError as exc:
            raise InvalidInputError(
                f"no RSE named {rse}",
                errors=[{"loc": ["query", "rse"], "msg": "unknown RSE", "type": "value_error"}],
            ) from exc
        existing = await self._existing(writer, scope, name)
        if existing is not None:
            if existing.type != "file":
                raise DidExistsError(f"{did} is a {existing.type}")
            if (request.expected_md5 and existing.md5 and existing.md5 != request.expected_md5) or (
                request.content_length is not None and existing.bytes != request.content_length
            ):
                raise ContentConflictError(f"{did} exists with other content")
        elif request.content_length is not None:
            await self._check_quota(writer, rse, request.content_length)
        if request.metadata:
            await self._backend.check_metadata_keys(writer, list(request.metadata))
        dataset, dataset_writer = (
            await self._prepare_dataset(actor, request.dataset) if request.dataset else (None, None)
        )
        return _UploadPlan(
            did=did,
            rse=rse,
            pfn=pfn,
            existing=existing,
            dataset=dataset,
            writer=writer,
            dataset_writer=dataset_writer,
        )

    @staticmethod
    def _check_received(request: UploadRequest, plan: _UploadPlan, sums: Checksummer) -> None:
        """The bytes that arrived are the bytes announced (and, for a known DID, its bytes)."""
        if request.content_length is not None and sums.bytes != request.content_length:
            raise BadRequestError(
                f"received {sums.bytes} bytes, Content-Length said {request.content_length}"
            )
        if request.expected_md5 and request.expected_md5 != sums.md5:
            raise ChecksumMismatchError(
                f"the body's md5 is {sums.md5}, the request announced "
                f"{request.expected_md5}; nothing was stored",
                extra={"expected_md5": request.expected_md5, "received_md5": sums.md5},
            )
        existing = plan.existing
        if existing is not None and (
            existing.adler32 != sums.adler32 or existing.bytes != sums.bytes
        ):
            raise ContentConflictError(
                f"{plan.did} exists with other content (adler32 {existing.adler32}, "
                f"{existing.bytes} bytes)"
            )

    async def upload(
        self, actor: Actor, request: UploadRequest, body: AsyncIterator[bytes]
    ) -> UploadedFile:
        """Stream ``body`` to an RSE and register it (see the module docstring)."""
        plan = await self._plan(actor, request)
        writer = plan.writer
        store = self._storage.for_url(plan.pfn)
        token = self._storage_token(writer)
        temp = f"{plan.pfn}{self._settings.temp_suffix}-{secrets.token_hex(8)}"
        sums = Checksummer()
        started = time.perf_counter()
        moved = registered = False
        try:
            await store.write(temp, _hashing(body, sums, self._settings.chunk_size), token=token)
            self._check_received(request, plan, sums)
            if plan.existing is not None and await self._has_replica(writer, plan.did, plan.rse):
                await self._discard(store, temp, token)
                return await self._finish(plan, sums, request, created=False)
            if plan.existing is None:
                await self._check_quota(writer, plan.rse, sums.bytes)
            event = self._recorder.event(
                EventKind.UPLOAD,
                writer,
                generated=[did_id(plan.did.scope, plan.did.name)],
                attributes={
                    "bytes": sums.bytes,
                    "adler32": sums.adler32,
                    "md5": sums.md5,
                    "rse": plan.rse,
                },
                labels={did_id(plan.did.scope, plan.did.name): plan.did.name},
            )
            async with self._recorder.recording(event):
                await store.move(temp, plan.pfn, token=token)
                moved = True
                await self._backend.register_file(
                    writer,
                    plan.rse,
                    plan.did,
                    size=sums.bytes,
                    adler32=sums.adler32,
                    md5=sums.md5,
                    pfn=None,
                )
                registered = True
        except BaseException as exc:
            if not registered:  # a registered file keeps its bytes, whatever fails after
                if moved and outcome_lost(exc):
                    self._settle_later(plan, store, token, sums)
                else:
                    with anyio.CancelScope(shield=True):
                        if moved and await self._replica_left(plan):
                            # Rucio refused a later step (e.g. the rule, over quota) after
                            # registering the replica, and lets nobody delete it: the bytes
                            # stay so that the catalogue never lists a file that is not there
                            # (unheld by any rule, the reaper may remove it later).
                            log.warning("upload_replica_kept", did=str(plan.did), rse=plan.rse)
                        else:
                            await self._discard(store, plan.pfn if moved else temp, token)
            raise
        log.info(
            "upload_registered",
            did=str(plan.did),
            rse=plan.rse,
            bytes=sums.bytes,
            seconds=round(time.perf_counter() - started, 3),
        )
        return await self._finish(plan, sums, request, created=True)

    async def _finish(
        self,
        plan: _UploadPlan,
        sums: Checksummer,
        request: UploadRequest,
        *,
        created: bool,
    ) -> UploadedFile:
        # The file is registered: what follows can fail on its own (reported, file kept).
        did, dataset = plan.did, plan.dataset
        if dataset is not None and plan.dataset_writer is not None:
            event = self._recorder.event(
                EventKind.ATTACH,
                plan.dataset_writer,
                used=[did_id(did.scope, did.name)],
                generated=[did_id(dataset.scope, dataset.name)],
                labels={did_id(dataset.scope, dataset.name): dataset.name},
            )
            try:
                async with self._recorder.recording(event):
                    await self._backend.attach(
                        plan.dataset_writer, dataset.scope, dataset.name, [did]
                    )
            except VreError as exc:
                if exc.status != 409 or created:  # already attached is fine on a re-upload
                    exc.detail = f"{did} was stored and registered, but attaching failed: {exc}"
                    raise
        if request.metadata:
            try:
                await self._backend.set_metadata(plan.writer, did.scope, did.name, request.metadata)
            except VreError as exc:
                exc.detail = f"{did} was stored and registered, but its metadata was refused: {exc}"
                raise
        return UploadedFile(
            scope=did.scope,
            name=did.name,
            bytes=sums.bytes,
            adler32=sums.adler32,
            md5=sums.md5,
            rse=plan.rse,
            pfn=plan.pfn,
            dataset=str(dataset) if dataset else None,
            created=created,
        )

    async def _replica_left(self, plan: _UploadPlan) -> bool:
        """After a refused registration: is a replica registered all the same? (When Rucio
        cannot say, assume so: stray bytes are better than a file without bytes.)"""
        try:
            return await self._backend.has_replica(plan.writer, plan.rse, plan.did)
        except VreError:
            return True

    def _settle_later(
        self, plan: _UploadPlan, store: Any, token: str | None, sums: Checksummer
    ) -> None:
        log.warning("upload_outcome_lost", did=str(plan.did), rse=plan.rse, pfn=plan.pfn)
        task = asyncio.get_running_loop().create_task(self._settle(plan, store, token, sums))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(
        self, plan: _UploadPlan, store: Any, token: str | None, sums: Checksummer
    ) -> None:
        """Finish or clean up a registration whose outcome was lost, once Rucio answers."""
        delay = SETTLE_FIRST_DELAY
        deadline = time.monotonic() + SETTLE_GIVE_UP
        where = {"did": str(plan.did), "rse": plan.rse, "pfn": plan.pfn}
        try:
            while True:
                try:
                    event = self._recorder.event(
                        EventKind.UPLOAD,
                        plan.writer,
                        generated=[did_id(plan.did.scope, plan.did.name)],
                        attributes={"bytes": sums.bytes, "adler32": sums.adler32,
                                    "md5": sums.md5, "rse": plan.rse},
                        labels={did_id(plan.did.scope, plan.did.name): plan.did.name},
                    )  # fmt: skip
                    async with self._recorder.recording(event):
                        registered = await self._backend.settle_registration(
                            plan.writer, plan.rse, plan.did
                        )
                        if not registered:
                            raise _NotRegisteredError
                except _NotRegisteredError:
                    await self._discard(store, plan.pfn, token)
                    log.info("upload_settled", outcome="not registered, bytes removed", **where)
                    return
                except VreError as exc:
                    if exc.status < 500 or time.monotonic() > deadline:
                        log.error("upload_unsettled", error=str(exc.detail), **where)
                        return  # the bytes stay: a replica may point at them
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, SETTLE_MAX_DELAY)
                    continue
                log.warning("upload_settled", outcome="registered (rule ensured)", **where)
                return
        except asyncio.CancelledError:
            log.error("upload_unsettled", error="the service stopped first", **where)
            raise

    @staticmethod
    async def _discard(store: Any, url: str, token: str | None) -> None:
        try:
            await store.delete(url, token=token)
        except (VreError, OSError) as exc:
            log.error("upload_cleanup_failed", url=url, error=str(exc))

    # ------------------------------------------------------------------ download

    def _pick(self, replicas: Sequence[Replica], what: str) -> Replica:
        order = {rse: i for i, rse in enumerate(self._settings.read_preference)}
        usable = [
            r
            for r in replicas
            if r.state == "AVAILABLE" and r.url and self._storage.supports(r.url)
        ]
        if not usable:
            raise ReplicaNotFoundError(f"no readable replica of {what}")
        return min(usable, key=lambda r: (order.get(r.rse, len(order)), r.rse))

    async def _file_replicas(self, actor: Actor, did: DidRef) -> FileReplicas:
        async for item in self._backend.iter_replicas(actor, [did], all_states=True):
            if item.scope == did.scope and item.name == did.name:
                return item
        raise ReplicaNotFoundError(f"no replica of {did}")

    async def download(
        self,
        actor: Actor,
        scope: str,
        name: str,
        *,
        range_header: str | None,
        if_none_match: str | None,
        rse: str | None = None,
    ) -> FileDownload:
        """Headers and body of a file, or of a byte range of it."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        did = DidRef(scope=scope, name=check_name(name))
        info = await self._backend.get_did(actor, scope, did.name)
        if info.type != "file":
            raise InvalidInputError(
                f"{did} is a {info.type}; download it with GET /dids/{scope}/{did.name}/archive"
            )
        size = info.bytes or 0
        etag = etag_for(info.adler32, info.md5)
        headers = {"Accept-Ranges": "bytes"}
        if etag:
            headers["ETag"] = etag
        if info.adler32:
            headers["X-Checksum-Adler32"] = info.adler32
        if info.md5:
            headers["X-Checksum-Md5"] = info.md5
        if etag and if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return FileDownload(status=304, headers=headers, body=None)
        replicas = await self._file_replicas(actor, did)
        if rse:
            replicas.replicas = [r for r in replicas.replicas if r.rse == check_rse(rse)]
        replica = self._pick(replicas.replicas, str(did))
        assert replica.url is not None
        store = self._storage.for_url(replica.url)
        token = self._storage_token(actor)
        headers["X-Replica-Rse"] = replica.rse
        headers["Content-Disposition"] = f'attachment; filename="{did.name.rsplit("/", 1)[-1]}"'
        byte_range = parse_range(range_header, size)
        if byte_range is None:
            headers["Content-Length"] = str(size)
            if size == 0:
                return FileDownload(status=200, headers=headers, body=_empty())
            stream = store.read(replica.url, token=token)
            body = verified(stream, adler32=info.adler32, size=size, what=str(did))
            return FileDownload(status=200, headers=headers, body=await primed(body))
        start, end = byte_range
        headers["Content-Length"] = str(end - start + 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        stream = store.read(replica.url, offset=start, length=end - start + 1, token=token)
        return FileDownload(status=206, headers=headers, body=await primed(stream))

    async def archive(self, actor: Actor, scope: str, name: str) -> FileDownload:
        """A dataset or container as a streamed tar of its files (``scope/name`` paths)."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        did = DidRef(scope=scope, name=check_name(name))
        info = await self._backend.get_did(actor, scope, did.name)
        if info.type == "file":
            raise InvalidInputError(f"{did} is a file; download it with GET /files/…")
        files = await primed(self._backend.iter_replicas(actor, [did], all_states=True))
        filename = did.name.replace("/", "_") + ".tar"
        return FileDownload(
            status=200,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            body=self._tar(actor, files),
            media_type="application/x-tar",
        )

    async def _tar(self, actor: Actor, files: AsyncIterator[FileReplicas]) -> AsyncIterator[bytes]:
        token = self._storage_token(actor)
        now = int(time.time())
        async for item in files:
            replica = self._pick(item.replicas, f"{item.scope}:{item.name}")
            assert replica.url is not None
            info = tarfile.TarInfo(f"{item.scope}/{item.name}")
            info.size = item.bytes or 0
            info.mtime = now
            info.mode = 0o644
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            stream = self._storage.for_url(replica.url).read(replica.url, token=token)
            async for chunk in verified(
                stream, adler32=item.adler32, size=info.size, what=f"{item.scope}:{item.name}"
            ):
                yield chunk
            padding = -info.size % tarfile.BLOCKSIZE
            if padding:
                yield b"\0" * padding
        yield b"\0" * (tarfile.BLOCKSIZE * 2)

    async def replicas(self, actor: Actor, scope: str, name: str) -> list[FileReplicas]:
        """The files of a DID with every replica and its state."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        did = DidRef(scope=scope, name=check_name(name))
        await self._backend.get_did(actor, scope, did.name)  # 404 for unknown DIDs
        return [item async for item in self._backend.iter_replicas(actor, [did], all_states=True)]


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover
