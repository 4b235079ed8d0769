"""ServiceDatalakeBackend: the Data Lake through the datalake service's API (caller's token)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import anyio

from vre_common.clients.datalake import DatalakeClient, ResolvedFile
from vre_common.errors import BackendUnavailableError
from vre_workflows.backends.base import RegisteredFile, ResolvedInput

CHUNK = 1 << 20


def _local_paths(resolved: ResolvedFile) -> tuple[Path, ...]:
    paths: list[Path] = []
    for replica in resolved.replicas:
        candidate = replica.path
        if candidate is None and replica.url.startswith("file://"):
            candidate = unquote(urlparse(replica.url).path)
        if candidate:
            path = Path(candidate)
            if path.is_file():
                paths.append(path)
    return tuple(paths)


class ServiceDatalakeBackend:
    """Resolve, download, upload and describe Data Lake files with the caller's token.

    Replicas whose path exists on this machine (POSIX RSEs of the embedded mode) are offered
    as ``local_paths`` so the executor can hard-link or copy instead of downloading.
    """

    def __init__(self, client: DatalakeClient) -> None:
        self._client = client

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def resolve(self, token: str, dids: Sequence[str]) -> list[ResolvedInput]:
        """The files behind ``dids`` (each labelled with the DID that reached it)."""
        files = await self._client.with_token(token).resolve(list(dids))
        out = []
        for f in files:
            out.append(
                ResolvedInput(
                    requested=f.parent or f"{f.scope}:{f.name}",
                    scope=f.scope,
                    name=f.name,
                    bytes=f.bytes,
                    adler32=f.adler32,
                    md5=f.md5,
                    local_paths=_local_paths(f),
                )
            )
        return out

    async def own_scope(self, token: str) -> str | None:
        """The caller's own scope, as the datalake service names it."""
        return await self._client.with_token(token).my_scope()

    @asynccontextmanager
    async def download(
        self, token: str, scope: str, name: str
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream one file."""
        async with self._client.with_token(token).download(scope, name) as body:
            yield body.iter_bytes(CHUNK)

    async def create_dataset(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Create the dataset that collects a run's outputs."""
        await self._client.with_token(token).create_dataset(scope, name, metadata=metadata)

    async def upload(
        self,
        token: str,
        scope: str,
        name: str,
        path: Path,
        *,
        md5: str,
        size: int,
        rse: str | None,
        dataset: str | None,
        metadata: dict[str, Any],
    ) -> RegisteredFile:
        """Stream a local file (Content-MD5 announced, so a corrupted upload registers nothing)."""

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as handle:
                while chunk := await handle.read(CHUNK):
                    yield chunk

        uploaded = await self._client.with_token(token).upload(
            scope,
            name,
            chunks(),
            rse=rse,
            md5=md5,
            size=size,
            dataset=dataset,
            metadata=metadata,
        )
        return RegisteredFile(
            did=f"{uploaded.scope}:{uploaded.name}",
            bytes=uploaded.bytes,
            adler32=uploaded.adler32,
            md5=uploaded.md5,
        )

    async def set_metadata(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Set metadata keys on a DID."""
        await self._client.with_token(token).set_metadata(scope, name, metadata)


class UnconfiguredDatalake:
    """No datalake URL configured: runs without Data Lake inputs/outputs still work."""

    def _refuse(self) -> BackendUnavailableError:
        return BackendUnavailableError(
            "the Data Lake is not configured for the workflows service "
            "(VRE_WORKFLOWS_DATALAKE__URL)",
            retry_after=60,
        )

    async def resolve(self, token: str, dids: Sequence[str]) -> list[ResolvedInput]:
        """Refuse."""
        raise self._refuse()

    async def own_scope(self, token: str) -> str | None:
        """No Data Lake: a personal run's outputs stay in its workspace."""
        return None

    @asynccontextmanager
    async def download(
        self, token: str, scope: str, name: str
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Refuse."""
        raise self._refuse()
        yield  # pragma: no cover (makes this a generator)

    async def create_dataset(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Refuse."""
        raise self._refuse()

    async def upload(
        self,
        token: str,
        scope: str,
        name: str,
        path: Path,
        *,
        md5: str,
        size: int,
        rse: str | None,
        dataset: str | None,
        metadata: dict[str, Any],
    ) -> RegisteredFile:
        """Refuse."""
        raise self._refuse()

    async def set_metadata(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Refuse."""
        raise self._refuse()
