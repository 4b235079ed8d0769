"""Reading files: a replica chosen and streamed, whole reads verified; dataset archives.

A replica is chosen (preferred RSEs first) and streamed in chunks. A whole read is
adler32-checked on the way, the sum of chunk N computed in a worker thread while chunk N+1
is read and chunk N-1 sent, and the last chunk is held back until the check passes, so a
corrupt replica ends in a broken connection, never in a silently wrong file.
(Uploads: :mod:`vre_datalake.services.uploads`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import tarfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import structlog

from vre_common.errors import InvalidInputError
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.backends.rse.base import StorageRouter
from vre_datalake.checksums import IN_THREAD_FROM, Adler32
from vre_datalake.config import StorageSettings
from vre_datalake.errors import ReplicaNotFoundError, StorageError
from vre_datalake.models import Did, DidRef, FileReplicas, Replica
from vre_datalake.names import check_name, check_rse
from vre_datalake.services.dids import primed
from vre_datalake.services.policy import ScopeAction, ScopePolicy

log = structlog.get_logger("vre.datalake.files")


async def verified(
    stream: AsyncIterator[bytes], *, adler32: str | None, size: int | None, what: str
) -> AsyncIterator[bytes]:
    """Pass ``stream`` through, holding back the last chunk until size and adler32 match."""
    check = Adler32()
    count = 0
    pending: bytes | None = None
    summing: asyncio.Future[None] | None = None
    try:
        async for chunk in stream:
            if summing is not None:
                await summing  # the sums go in order
                summing = None
            if len(chunk) >= IN_THREAD_FROM:
                summing = asyncio.ensure_future(asyncio.to_thread(check.update, chunk))
            else:
                check.update(chunk)
            count += len(chunk)
            if pending is not None:
                yield pending  # sent while this chunk is summed and the next one read
            pending = chunk
        if summing is not None:
            await summing
            summing = None
    finally:
        if summing is not None:
            with contextlib.suppress(BaseException):
                await summing
    if (size is not None and count != size) or (adler32 and check.hexdigest != adler32):
        log.error("replica_corrupt", did=what, expected=adler32, got=check.hexdigest, size=count)
        raise StorageError(f"the replica of {what} does not match its checksum; aborted")
    if pending is not None:
        yield pending


@dataclass(frozen=True)
class ReadableFile:
    """A file DID the caller may read, and the actor that reads it."""

    reader: Actor
    did: Did


@dataclass
class FileRead:
    """A file being read: its DID (size, checksums), the RSE read from, and the bytes."""

    did: Did
    rse: str
    body: AsyncIterator[bytes]


@dataclass
class ArchiveRead:
    """A collection as a tar stream."""

    filename: str
    body: AsyncIterator[bytes]


class FileService:
    """Downloads, archives and replica listings."""

    def __init__(
        self,
        *,
        backend: DatalakeBackend,
        policy: ScopePolicy,
        storage: StorageRouter,
        settings: StorageSettings,
        storage_token: Callable[[Actor], str | None],
    ) -> None:
        self._backend = backend
        self._policy = policy
        self._storage = storage
        self._settings = settings
        self._storage_token = storage_token

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

    async def describe(self, actor: Actor, scope: str, name: str) -> ReadableFile:
        """The file DID a download is about (422 for a collection)."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        info = await self._backend.get_did(actor, scope, check_name(name))
        if info.type != "file":
            raise InvalidInputError(
                f"{scope}:{info.name} is a {info.type}; download it with "
                f"GET /dids/{scope}/{info.name}/archive"
            )
        return ReadableFile(reader=actor, did=info)

    async def read(
        self,
        file: ReadableFile,
        *,
        rse: str | None = None,
        first: int = 0,
        length: int | None = None,
    ) -> FileRead:
        """The bytes of a file from ``first`` (``length`` of them, all if None).

        A whole read is verified against the file's adler32 while it streams.
        """
        actor, info = file.reader, file.did
        did = DidRef(scope=info.scope, name=info.name)
        replicas = await self._file_replicas(actor, did)
        if rse:
            replicas.replicas = [r for r in replicas.replicas if r.rse == check_rse(rse)]
        replica = self._pick(replicas.replicas, str(did))
        assert replica.url is not None
        size = info.bytes or 0
        whole = first == 0 and (length is None or length >= size)
        if size == 0:
            return FileRead(did=info, rse=replica.rse, body=_empty())
        store = self._storage.for_url(replica.url)
        token = self._storage_token(actor)
        if whole:
            stream = store.read(replica.url, token=token)
            body = verified(stream, adler32=info.adler32, size=size, what=str(did))
        else:
            body = store.read(replica.url, offset=first, length=length, token=token)
        return FileRead(did=info, rse=replica.rse, body=await primed(body))

    async def archive(self, actor: Actor, scope: str, name: str) -> ArchiveRead:
        """A dataset or container as a streamed tar of its files (``scope/name`` paths)."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        did = DidRef(scope=scope, name=check_name(name))
        info = await self._backend.get_did(actor, scope, did.name)
        if info.type == "file":
            raise InvalidInputError(f"{did} is a file; download it with GET /files/…")
        files = await primed(self._backend.iter_replicas(actor, [did], all_states=True))
        return ArchiveRead(
            filename=did.name.replace("/", "_") + ".tar", body=self._tar(actor, files)
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
