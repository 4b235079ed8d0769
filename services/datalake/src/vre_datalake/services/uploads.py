"""Uploads: one :class:`Upload` owns a file from its plan to its last step in Rucio.

An upload is placed (who writes, on which RSE, at which PFN) and checked (the DID if it
exists, the quota when the size is announced) before its body is kept: a large body is
checked before a byte is read, a small one while it is written. The body is streamed under a
temporary name next to its final PFN with md5 and adler32 computed in worker threads beside
the write, verified (size, announced md5, an existing DID's checksums, quota), moved into
place, and registered: the replica, then the account's rule. A dataset and metadata come
last.

Rucio requests of a new file in the caller's own scope (no dataset, no metadata), with the
service warm: the DID (does it exist?), the replica, the rule — and the account's
usage when the one read is older than ``rucio.usage_cache_seconds``. The PFN is computed
here from the layout learnt at the first upload to the RSE (:mod:`..backends.rucio.rses`).

What holds whatever fails:

- Checksums are those of the bytes written. An announced md5 must match; a DID that exists
  must have the same size and adler32 (Rucio keeps an existing DID's checksums when a
  replica is added and compares nothing, so this is checked here, before registering).
- Quota: the early check uses the account's usage (reused for a few seconds, plus what this
  service registered since); Rucio's own check when the rule is added is the one that holds.
- No listed file without bytes: the bytes are in place before the replica is registered.
- No bytes without a listing once settled: a failure before the registration removes them;
  a refused replica registered nothing (Rucio's one transaction), so its bytes go; a refused
  rule leaves the replica registered (Rucio lets nobody delete one) and its bytes stay.
  When Rucio goes away during the registration the outcome is unknown: the bytes stay and
  the upload is settled in the background once Rucio answers — the rule added if the replica
  is there, the bytes removed if it is not. A new upload of the same DID settles it first.

Concurrent uploads of one DID in this process go one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from vre_common.errors import BadRequestError, InvalidInputError, QuotaExceededError, VreError
from vre_common.provenance import Event, EventKind, did_id
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.backends.rse.base import ObjectStore, StorageRouter
from vre_datalake.checksums import Checksummer
from vre_datalake.config import StorageSettings
from vre_datalake.errors import (
    ChecksumMismatchError,
    ContentConflictError,
    DidExistsError,
    DidNotFoundError,
    QuotaError,
    RseNotFoundError,
    RuleExistsError,
)
from vre_datalake.models import Did, DidRef, NewReplica, RseUsage, UploadedFile
from vre_datalake.names import check_name, check_rse, parse_did
from vre_datalake.services.batching import GroupCommit
from vre_datalake.services.policy import ScopeAction, ScopePolicy
from vre_datalake.services.provenance import ProvenanceRecorder
from vre_datalake.streams import read_ahead, rechunked

log = structlog.get_logger("vre.datalake.uploads")

# Bytes summed and written per hand-off to the worker threads (at least storage.chunk_size):
# each hand-off costs a thread wake-up, which a busy machine makes expensive.
UPLOAD_CHUNK = 4 << 20
# For a larger body: chunks received ahead while the one before is written, and chunks
# whose sums may still be running while the next one is written (memory: a few chunks).
READ_AHEAD = 1
SUMS_BEHIND = 2
SETTLE_FIRST_DELAY = 0.5  # seconds between attempts to settle a lost registration: doubling…
SETTLE_MAX_DELAY = 5.0  # …up to this (one cheap call to a Rucio that may be back)
SETTLE_GIVE_UP = 24 * 3600.0  # then the case is left to an operator (logged, bytes kept)


def outcome_lost(exc: BaseException) -> bool:
    """Whether a registration step that failed with ``exc`` may still have happened in Rucio.

    Rucio unreachable, too slow or failing (5xx), or the request cancelled while a call was
    out: the call may have been done by Rucio. A 4xx answer is Rucio's refusal.
    """
    if isinstance(exc, QuotaExceededError):  # 507, but Rucio's answer, not an outage
        return False
    if isinstance(exc, VreError):
        return exc.status >= 500
    return not isinstance(exc, Exception)  # cancelled (the client went away)


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


class Stage(enum.Enum):
    """How far an upload got (what a failure leaves to clean up or settle)."""

    PLANNED = "planned"
    WRITTEN = "written"  # the bytes are under their temporary name
    IN_PLACE = "in place"  # the bytes are at the final PFN, nothing registered (yet)
    REPLICA = "replica"  # the replica is registered, the rule not (yet)
    REGISTERED = "registered"  # replica and rule
    DISCARDED = "discarded"  # not registered, bytes removed


async def checksummed(
    source: AsyncIterator[bytes], sums: Checksummer, chunk_size: int, *, ahead: int = 0
) -> AsyncGenerator[bytes, None]:
    """``source`` in chunks of ``chunk_size``, each handed on while its sums are computed.

    The consumer writes a chunk while its sums (and those of up to ``SUMS_BEHIND`` chunks
    before it) are computed in worker threads. With ``ahead`` > 0 a task of its own receives
    up to that many chunks ahead meanwhile: for a large body, receiving, summing and writing
    then overlap instead of taking turns.
    """
    chunks = rechunked(source, chunk_size)
    if ahead:
        chunks = read_ahead(chunks, ahead)
    try:
        async for chunk in chunks:
            await sums.keep_up(SUMS_BEHIND)
            sums.add(chunk)
            yield chunk
        await sums.keep_up()
    finally:
        await sums.abandon()
        await chunks.aclose()


class UsageCache:
    """Accounts' usage per RSE, read from Rucio at most every ``ttl`` seconds.

    What this service registers meanwhile is added to it, so the early check does not fall
    behind its own uploads; a refusal is only given on a fresh read.
    """

    def __init__(self, backend: DatalakeBackend, ttl: float) -> None:
        self._backend = backend
        self._ttl = ttl
        self._entries: dict[str, tuple[float, dict[str, RseUsage]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, actor: Actor, *, fresh: bool = False) -> tuple[dict[str, RseUsage], bool]:
        """The usage per RSE, and whether it was read from Rucio just now."""
        key = actor.account
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one read for the callers that find it stale together
            entry = self._entries.get(key)
            if entry is not None and not fresh and time.monotonic() - entry[0] < self._ttl:
                return entry[1], False
            usage = {u.rse: u for u in await self._backend.account_usage(actor)}
            self._entries[key] = (time.monotonic(), usage)
            return usage, True

    @staticmethod
    def _refusal(usage: dict[str, RseUsage], rse: str, size: int) -> QuotaError | None:
        entry = usage.get(rse)
        if entry is None:
            return QuotaError(rse, limit_bytes=None, used_bytes=None, requested_bytes=size,
                              detail=f"your account has no quota on {rse}")  # fmt: skip
        if entry.limit_bytes is None or entry.used_bytes + size > entry.limit_bytes:
            return QuotaError(
                rse, limit_bytes=entry.limit_bytes, used_bytes=entry.used_bytes,
                requested_bytes=size,
            )  # fmt: skip
        return None

    async def check(self, actor: Actor, rse: str, size: int) -> None:
        """QuotaError if ``size`` more bytes on ``rse`` exceed the account's limit."""
        usage, fresh = await self.get(actor)
        refusal = self._refusal(usage, rse, size)
        if refusal is not None and not fresh:
            usage, _ = await self.get(actor, fresh=True)
            refusal = self._refusal(usage, rse, size)
        if refusal is not None:
            raise refusal

    async def refusal(self, actor: Actor, rse: str, size: int | None) -> QuotaError:
        """The 507 for a write Rucio refused over quota, with fresh numbers."""
        usage, _ = await self.get(actor, fresh=True)
        entry = usage.get(rse)
        return QuotaError(
            rse,
            limit_bytes=entry.limit_bytes if entry else None,
            used_bytes=entry.used_bytes if entry else None,
            requested_bytes=size,
        )

    def add(self, actor: Actor, rse: str, size: int) -> None:
        """``size`` bytes were registered on ``rse`` for the account."""
        entry = self._entries.get(actor.account)
        if entry is not None and rse in entry[1]:
            usage = entry[1][rse]
            entry[1][rse] = usage.model_copy(update={"used_bytes": usage.used_bytes + size})


class Upload:
    """One upload, from its plan to its last step in Rucio (see the module docstring)."""

    def __init__(self, owner: UploadService, actor: Actor, request: UploadRequest) -> None:
        self._owner = owner
        self._backend = owner.backend
        self.actor = actor
        self.request = request
        self.did = DidRef(scope=request.scope, name=check_name(request.name))
        self.stage = Stage.PLANNED
        self.sums = Checksummer()
        # set by place() and check()
        self.writer = actor
        self.rse = ""
        self.pfn = ""
        self.temp = ""
        self.existing: Did | None = None
        self.quota_checked = False
        self.dataset: DidRef | None = None
        self.dataset_writer: Actor | None = None
        self._store: ObjectStore | None = None
        self._token: str | None = None

    @property
    def store(self) -> ObjectStore:
        """The storage the PFN is on."""
        assert self._store is not None, "place() first"
        return self._store

    # --- plan: where the bytes go, and every check that can be made before they are kept

    async def place(self) -> None:
        """Who writes (403 if nobody may), on which RSE, at which PFN."""
        owner, request, did = self._owner, self.request, self.did
        self.writer = await owner.policy.authorize(self.actor, did.scope, ScopeAction.WRITE)
        self.rse = await owner.choose_rse(self.writer, request.rse)
        try:
            self.pfn = await self._backend.write_pfn(self.writer, self.rse, did)
        except RseNotFoundError as exc:
            raise InvalidInputError(
                f"no RSE named {self.rse}",
                errors=[{"loc": ["rse"], "msg": "unknown RSE", "type": "value_error"}],
            ) from exc
        self._store = owner.storage.for_url(self.pfn)
        self._token = owner.storage_token(self.writer)
        self.temp = f"{self.pfn}{owner.settings.temp_suffix}-{secrets.token_hex(8)}"

    async def check(self) -> None:
        """What Rucio holds under the name, the quota, metadata keys, the dataset (4xx)."""
        owner, request, did = self._owner, self.request, self.did
        size = request.content_length
        existing, quota = await asyncio.gather(
            self._existing(self.writer, did),
            owner.usage.check(self.writer, self.rse, size) if size is not None else _nothing(),
            return_exceptions=True,
        )
        if isinstance(existing, BaseException):
            raise existing
        self.existing = existing
        if existing is not None:
            if existing.type != "file":
                raise DidExistsError(f"{did} is a {existing.type}")
            if (request.expected_md5 and existing.md5 and existing.md5 != request.expected_md5) or (
                size is not None and existing.bytes != size
            ):
                raise ContentConflictError(f"{did} exists with other content")
        elif isinstance(quota, BaseException):
            raise quota
        else:
            self.quota_checked = size is not None
        if request.metadata:
            await self._backend.check_metadata_keys(self.writer, list(request.metadata))
        if request.dataset:
            self.dataset, self.dataset_writer = await self._prepare_dataset(request.dataset)

    @property
    def chunk_size(self) -> int:
        """Bytes summed and written per hand-off to the worker threads."""
        return max(self._owner.settings.chunk_size, UPLOAD_CHUNK)

    @property
    def one_chunk(self) -> bool:
        """Whether the body is announced to fit in one chunk (one hand-off)."""
        size = self.request.content_length
        return size is not None and size <= self.chunk_size

    @property
    def checked_beside_write(self) -> bool:
        """Whether the checks run while the body is written: for a body of one chunk into
        no dataset. Rucio's answers and the write then wait for the busy machine together
        instead of one after the other; a refusal removes the few bytes written. A larger
        body is checked before a byte is read, and a dataset is made (a change in Rucio)
        only for a body that is being written."""
        return self.one_chunk and not self.request.dataset

    async def _existing(self, actor: Actor, did: DidRef) -> Did | None:
        try:
            return await self._backend.stat_did(actor, did.scope, did.name)
        except DidNotFoundError:
            return None

    async def _prepare_dataset(self, dataset: str) -> tuple[DidRef, Actor]:
        scope, name = parse_did(dataset, "dataset")
        writer = await self._owner.policy.authorize(self.actor, scope, ScopeAction.WRITE)
        existing = await self._existing(writer, DidRef(scope=scope, name=name))
        if existing is None:
            try:
                await self._backend.add_collection(
                    writer, scope, name, "dataset", metadata={}, lifetime=None
                )
            except DidExistsError:  # made meanwhile (by another upload into it)
                existing = await self._backend.stat_did(writer, scope, name)
        if existing is not None and existing.type != "dataset":
            raise InvalidInputError(
                f"{dataset} is a {existing.type}, not a dataset",
                errors=[{"loc": ["dataset"], "msg": "not a dataset", "type": "value"}],
            )
        return DidRef(scope=scope, name=name), writer

    # --- bytes

    async def write(self, body: AsyncIterator[bytes]) -> None:
        """The body under the temporary name, checksummed on the way."""
        ahead = 0 if self.one_chunk else READ_AHEAD
        chunks = checksummed(body, self.sums, self.chunk_size, ahead=ahead)
        async with contextlib.aclosing(chunks):
            await self.store.write(self.temp, chunks, token=self._token)
        self.stage = Stage.WRITTEN

    async def check_and_write(self, body: AsyncIterator[bytes]) -> None:
        """:meth:`check` while the body is written; the checks' refusal comes first (as if
        they had run before), the write's failure otherwise."""
        checks = asyncio.ensure_future(self.check())
        try:
            await self.write(body)
        except Exception:
            await asyncio.wait([checks])
            refusal = None if checks.cancelled() else checks.exception()
            if refusal is not None:
                raise refusal from None
            raise
        except BaseException:  # cancelled: the checks go too
            checks.cancel()
            await asyncio.wait([checks])
            if not checks.cancelled():
                checks.exception()  # read, so that nobody warns it was never retrieved
            raise
        await checks

    async def verify(self) -> None:
        """The written body against its announcement, Rucio's DID and the quota."""
        request, sums, existing = self.request, self.sums, self.existing
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
        if existing is not None and (
            existing.adler32 != sums.adler32 or existing.bytes != sums.bytes
        ):
            raise ContentConflictError(
                f"{self.did} exists with other content (adler32 {existing.adler32}, "
                f"{existing.bytes} bytes)"
            )
        if existing is None and not self.quota_checked:
            await self._owner.usage.check(self.writer, self.rse, sums.bytes)

    # --- registration

    async def _replica_here(self, *, available_only: bool) -> bool:
        """Whether Rucio lists a replica of the DID on the upload's RSE."""
        try:
            async for item in self._backend.iter_replicas(self.writer, [self.did], all_states=True):
                for replica in item.replicas:
                    if replica.rse == self.rse and (
                        replica.state == "AVAILABLE" or not available_only
                    ):
                        return True
        except DidNotFoundError:
            return False
        return False

    def _event(self) -> Event:
        did = did_id(self.did.scope, self.did.name)
        sums = self.sums
        return self._owner.recorder.event(
            EventKind.UPLOAD,
            self.writer,
            generated=[did],
            attributes={"bytes": sums.bytes, "adler32": sums.adler32, "md5": sums.md5,
                        "rse": self.rse},
            labels={did: self.did.name},
        )  # fmt: skip

    async def register(self) -> bool:
        """Move the bytes into place and register them; False if they were registered already."""
        if self.existing is not None and await self._replica_here(available_only=True):
            await self._discard(self.temp)
            self.stage = Stage.DISCARDED
            return False
        async with self._owner.recorder.recording(self._event()):
            await self.store.move(self.temp, self.pfn, token=self._token)
            self.stage = Stage.IN_PLACE
            replica = NewReplica(did=self.did, size=self.sums.bytes, adler32=self.sums.adler32,
                                 md5=self.sums.md5, pfn=self.pfn)  # fmt: skip
            registrar = self._backend.replica_registrar(self.writer)
            try:
                await self._owner.replicas.submit((registrar, self.rse), replica)
            except InvalidInputError:
                self._backend.forget_rse(self.rse)  # e.g. a PFN Rucio does not expect
                raise
            self.stage = Stage.REPLICA
            await self._add_rule()
        return True

    async def _add_rule(self) -> None:
        try:
            await self._owner.rules.submit((self.writer, self.rse), self.did)
        except RuleExistsError:
            pass  # the account holds it already (a re-upload, or a rule whose answer was lost)
        except QuotaError as exc:
            raise await self._owner.usage.refusal(self.writer, self.rse, self.sums.bytes) from exc
        else:
            self._owner.usage.add(self.writer, self.rse, self.sums.bytes)
        self.stage = Stage.REGISTERED

    # --- clean-up and settling

    async def clean_up(self, exc: BaseException) -> None:
        """After a failure: remove what no listing points at, or leave it to :meth:`settle`."""
        if self.stage in (Stage.PLANNED, Stage.WRITTEN):  # (missing is fine)
            await self._discard(self.temp)
        elif self.stage is Stage.IN_PLACE:
            if outcome_lost(exc):
                self._owner.settle_later(self)
            else:  # Rucio refused the replica: one transaction, nothing registered
                await self._discard(self.pfn)
                self.stage = Stage.DISCARDED
        elif self.stage is Stage.REPLICA:
            if outcome_lost(exc):
                self._owner.settle_later(self)
            else:
                # Rucio refused the rule (e.g. over quota) after registering the replica, and
                # lets nobody delete it: the bytes stay, so that the catalogue never lists a
                # file that is not there.
                log.warning("upload_replica_kept", did=str(self.did), rse=self.rse)

    async def settle(self) -> None:
        """One attempt to finish or undo a registration whose outcome was lost.

        Raises the VreError of a Rucio that cannot answer yet; afterwards the stage is
        REGISTERED or DISCARDED.
        """
        async with self._owner.recorder.recording(self._event()):
            if self.stage is Stage.IN_PLACE:
                if not await self._replica_here(available_only=False):
                    raise _NotRegisteredError  # the event is dropped, the bytes go
                self.stage = Stage.REPLICA
            await self._add_rule()

    async def _discard(self, url: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.store.delete(url, token=self._token)
            except (VreError, OSError) as exc:
                log.error("upload_cleanup_failed", url=url, error=str(exc))

    async def discard_unregistered(self) -> None:
        """Rucio has no replica: remove the bytes."""
        await self._discard(self.pfn)
        self.stage = Stage.DISCARDED

    # --- the whole

    async def run(self, body: AsyncIterator[bytes]) -> UploadedFile:
        """Place, check and write, verify, register; then the dataset and metadata."""
        await self.place()
        beside = self.checked_beside_write
        if not beside:
            await self.check()
        started = time.perf_counter()
        try:
            await (self.check_and_write(body) if beside else self.write(body))
            await self.verify()
            created = await self.register()
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self.clean_up(exc)
            raise
        if created:
            log.info("upload_registered", did=str(self.did), rse=self.rse, bytes=self.sums.bytes,
                     seconds=round(time.perf_counter() - started, 3))  # fmt: skip
        await self._attach_and_describe(created=created)
        return UploadedFile(
            scope=self.did.scope,
            name=self.did.name,
            bytes=self.sums.bytes,
            adler32=self.sums.adler32,
            md5=self.sums.md5,
            rse=self.rse,
            pfn=self.pfn,
            dataset=str(self.dataset) if self.dataset else None,
            created=created,
        )

    async def _attach_and_describe(self, *, created: bool) -> None:
        # The file is registered: what follows can fail on its own (reported, file kept).
        did, dataset, writer = self.did, self.dataset, self.dataset_writer
        if dataset is not None and writer is not None:
            used, generated = did_id(did.scope, did.name), did_id(dataset.scope, dataset.name)
            event = self._owner.recorder.event(
                EventKind.ATTACH, writer, used=[used], generated=[generated],
                labels={generated: dataset.name},
            )  # fmt: skip
            try:
                async with self._owner.recorder.recording(event):
                    await self._backend.attach(writer, dataset.scope, dataset.name, [did])
            except VreError as exc:
                if exc.status != 409 or created:  # already attached is fine on a re-upload
                    exc.detail = f"{did} was stored and registered, but attaching failed: {exc}"
                    raise
        if self.request.metadata:
            try:
                await self._backend.set_metadata(
                    self.writer, did.scope, did.name, self.request.metadata
                )
            except VreError as exc:
                exc.detail = f"{did} was stored and registered, but its metadata was refused: {exc}"
                raise


def _refused(exc: BaseException) -> bool:
    """Whether a batch that failed with ``exc`` was refused by Rucio (then each item is sent
    alone for its own answer) rather than lost on the way (then each caller gets ``exc``)."""
    return not outcome_lost(exc)


class _NotRegisteredError(Exception):
    """Rucio has no replica of an upload whose registration outcome was lost."""


async def _nothing() -> None:
    return None


class _KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class UploadService:
    """Starts uploads and keeps what they share: RSE choice, usage, per-DID order, settling."""

    def __init__(
        self,
        *,
        backend: DatalakeBackend,
        policy: ScopePolicy,
        storage: StorageRouter,
        settings: StorageSettings,
        usage_cache_seconds: float,
        storage_token: Callable[[Actor], str | None],
        recorder: ProvenanceRecorder,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.storage = storage
        self.settings = settings
        self.storage_token = storage_token
        self.recorder = recorder
        self.usage = UsageCache(backend, usage_cache_seconds)
        # Concurrent registrations share Rucio requests (group commit, see .batching): the
        # replicas of one RSE (registered by one identity in service mode), the rules of one
        # account on one RSE.
        self.replicas: GroupCommit[tuple[Actor, str], NewReplica] = GroupCommit(
            lambda key, files: backend.add_replicas(key[0], key[1], files),
            send_one=lambda key, file: backend.add_replicas(key[0], key[1], [file]),
            split=_refused,
        )
        self.rules: GroupCommit[tuple[Actor, str], DidRef] = GroupCommit(
            lambda key, dids: backend.add_file_rules(key[0], key[1], dids),
            send_one=lambda key, did: backend.add_file_rule(key[0], key[1], did),
            split=_refused,
        )
        self._dids = _KeyedLocks()
        self._unsettled: dict[str, Upload] = {}
        self._settling: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Stop settling lost registrations (their bytes stay; each is logged)."""
        await self.replicas.aclose()
        await self.rules.aclose()
        for task in list(self._settling):
            task.cancel()
        if self._settling:
            await asyncio.wait(list(self._settling))

    async def choose_rse(self, actor: Actor, rse: str | None) -> str:
        """The RSE asked for, else the configured default, else the first writable one."""
        if rse:
            return check_rse(rse, "rse")
        if self.settings.default_rse:
            return self.settings.default_rse
        for candidate in await self.backend.list_rses(actor):
            if candidate.availability_write and any(
                self.storage.supports_scheme(s) for s in candidate.schemes
            ):
                return candidate.name
        raise InvalidInputError(
            "no writable RSE: name one with ?rse=",
            errors=[{"loc": ["rse"], "msg": "required here", "type": "missing"}],
        )

    async def upload(
        self, actor: Actor, request: UploadRequest, body: AsyncIterator[bytes]
    ) -> UploadedFile:
        """Stream ``body`` to an RSE and register it (see the module docstring)."""
        upload = Upload(self, actor, request)
        key = str(upload.did)
        async with self._dids.hold(key):
            unsettled = self._unsettled.get(key)
            if unsettled is not None:
                await self._settle_once(key, unsettled)  # Rucio still away: its 503
            return await upload.run(body)

    # --- settling lost outcomes

    def settle_later(self, upload: Upload) -> None:
        """Keep the bytes of ``upload`` and settle it once Rucio answers."""
        log.warning("upload_outcome_lost", did=str(upload.did), rse=upload.rse, pfn=upload.pfn)
        key = str(upload.did)
        self._unsettled[key] = upload
        task = asyncio.get_running_loop().create_task(self._settle(key, upload))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_once(self, key: str, upload: Upload) -> None:
        """One attempt (the DID's lock held); raises a 5xx VreError while Rucio is away."""
        where = {"did": key, "rse": upload.rse, "pfn": upload.pfn}
        try:
            await upload.settle()
        except _NotRegisteredError:
            await upload.discard_unregistered()
            log.info("upload_settled", outcome="not registered, bytes removed", **where)
        except VreError as exc:
            if exc.status >= 500:
                raise
            log.error("upload_unsettled", error=str(exc.detail), **where)
        else:
            log.warning("upload_settled", outcome="registered (rule ensured)", **where)
        self._unsettled.pop(key, None)

    async def _settle(self, key: str, upload: Upload) -> None:
        delay = SETTLE_FIRST_DELAY
        deadline = time.monotonic() + SETTLE_GIVE_UP
        try:
            while True:
                async with self._dids.hold(key):
                    if self._unsettled.get(key) is not upload:
                        return  # a new upload of the DID settled it
                    try:
                        await self._settle_once(key, upload)
                        return
                    except VreError as exc:
                        if time.monotonic() > deadline:
                            self._unsettled.pop(key, None)
                            log.error("upload_unsettled", error=str(exc.detail), did=key,
                                      rse=upload.rse, pfn=upload.pfn)  # fmt: skip
                            return  # the bytes stay: a replica may point at them
                await asyncio.sleep(delay)
                delay = min(2 * delay, SETTLE_MAX_DELAY)
        except asyncio.CancelledError:
            log.error("upload_unsettled", error="the service stopped first", did=key,
                      rse=upload.rse, pfn=upload.pfn)  # fmt: skip
            raise
