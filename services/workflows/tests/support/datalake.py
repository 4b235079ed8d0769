"""A small POSIX Data Lake implementing the service's DatalakePort, for tests without Rucio.

Files live under a folder (a POSIX "RSE" on this machine), so staging by hard link, by copy
and by streamed download can all be exercised; checksums are computed as Rucio records them.
The end-to-end test against the real Rucio fixture uses ServiceDatalakeBackend instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vre_common.errors import ConflictError, InvalidInputError, InvalidTokenError, NotFoundError
from vre_workflows.backends.base import RegisteredFile, ResolvedInput


@dataclass
class StoredFile:
    scope: str
    name: str
    path: Path
    bytes: int
    adler32: str
    md5: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredDataset:
    scope: str
    name: str
    files: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _digest(data: bytes) -> tuple[str, str]:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}", hashlib.md5(data).hexdigest()


class PosixDatalake:
    """DatalakePort over a folder. ``posix=False`` hides local paths (forces downloads)."""

    def __init__(self, root: Path, *, posix: bool = True) -> None:
        self.root = root
        self.posix = posix
        self.files: dict[str, StoredFile] = {}
        self.datasets: dict[str, StoredDataset] = {}
        self.tokens: list[str] = []
        self.downloads: list[str] = []
        self.fail_upload_of: str | None = None

    def add_file(self, scope: str, name: str, content: bytes) -> StoredFile:
        path = self.root / scope / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        adler, md5 = _digest(content)
        stored = StoredFile(scope, name, path, len(content), adler, md5)
        self.files[f"{scope}:{name}"] = stored
        return stored

    def add_dataset(self, scope: str, name: str, files: list[str]) -> None:
        self.datasets[f"{scope}:{name}"] = StoredDataset(scope, name, list(files))

    def _check(self, token: str) -> None:
        if not token:
            raise InvalidTokenError("missing bearer token")
        self.tokens.append(token)

    async def own_scope(self, token: str) -> str | None:
        """``user.<preferred_username>`` from the (test issuer's) token, as the datalake does."""
        self._check(token)
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return f"user.{claims.get('preferred_username') or claims['sub']}"

    async def resolve(self, token: str, dids: Sequence[str]) -> list[ResolvedInput]:
        self._check(token)
        out = []
        for did in dids:
            if did in self.files:
                members = [did]
            elif did in self.datasets:
                members = self.datasets[did].files
            else:
                raise NotFoundError(f"DID {did} not found")
            for member in members:
                f = self.files[member]
                out.append(
                    ResolvedInput(
                        requested=did,
                        scope=f.scope,
                        name=f.name,
                        bytes=f.bytes,
                        adler32=f.adler32,
                        md5=f.md5,
                        local_paths=(f.path,) if self.posix else (),
                    )
                )
        return out

    @asynccontextmanager
    async def download(
        self, token: str, scope: str, name: str
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        self._check(token)
        stored = self.files.get(f"{scope}:{name}")
        if stored is None:
            raise NotFoundError(f"{scope}:{name} not found")
        self.downloads.append(f"{scope}:{name}")

        async def body() -> AsyncIterator[bytes]:
            with stored.path.open("rb") as handle:
                while chunk := handle.read(1 << 16):
                    yield chunk

        yield body()

    async def create_dataset(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        self._check(token)
        did = f"{scope}:{name}"
        if did in self.datasets or did in self.files:
            raise ConflictError(f"{did} exists already")
        self.datasets[did] = StoredDataset(scope, name, [], dict(metadata))

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
        self._check(token)
        if self.fail_upload_of and name.endswith(self.fail_upload_of):
            raise ConflictError(f"refused {name}")
        data = await asyncio.to_thread(path.read_bytes)
        adler, real_md5 = _digest(data)
        if real_md5 != md5 or len(data) != size:
            raise InvalidInputError("checksum mismatch: nothing registered")
        did = f"{scope}:{name}"
        if did in self.files:
            raise ConflictError(f"{did} exists already")
        stored = self.add_file(scope, name, data)
        stored.metadata.update(metadata)
        stored.metadata["rse"] = rse
        if dataset:
            if dataset not in self.datasets:
                raise NotFoundError(f"dataset {dataset} not found")
            self.datasets[dataset].files.append(did)
        return RegisteredFile(did=did, bytes=len(data), adler32=adler, md5=real_md5)

    async def set_metadata(
        self, token: str, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        self._check(token)
        did = f"{scope}:{name}"
        if did in self.datasets:
            self.datasets[did].metadata.update(metadata)
        elif did in self.files:
            self.files[did].metadata.update(metadata)
        else:
            raise NotFoundError(f"{did} not found")
