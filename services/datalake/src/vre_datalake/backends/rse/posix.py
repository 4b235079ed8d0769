"""POSIX storage (``file://`` PFNs): file I/O in worker threads, never on the event loop."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from vre_datalake.errors import StorageError


def path_of(url: str) -> Path:
    """The local path of a ``file://`` PFN (``file://localhost/a/b`` and ``file:///a/b``)."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise StorageError(f"not a local file URL: {url}")
    path = Path(unquote(parts.path))
    if not path.is_absolute() or ".." in path.parts:
        raise StorageError(f"refusing the file URL {url}")
    return path


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb", buffering=0)


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2) (CPython's os module does not offer it), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


# Start the disk writeback of each chunk as soon as it is written (the call returns at once),
# so that the fsync before registration finds little left to flush instead of the whole file.
_sync_file_range = _libc_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def _write(handle: BinaryIO, chunk: bytes, offset: int, writeback: bool) -> None:
    handle.write(chunk)
    if writeback and _sync_file_range is not None:
        _sync_file_range(handle.fileno(), offset, len(chunk), _SYNC_FILE_RANGE_WRITE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _NewFile:
    """A file being written (its methods run in worker threads, one at a time)."""

    def __init__(self, path: Path, sync: bool) -> None:
        self.path = path
        self.sync = sync
        self.handle: BinaryIO | None = None
        self.offset = 0

    def _open(self) -> BinaryIO:
        if self.handle is None:
            try:
                self.handle = _open_new(self.path)
            except FileExistsError as exc:
                raise StorageError(f"{self.path.name} exists already on the storage") from exc
            except OSError as exc:
                raise StorageError(f"cannot create a file on the storage: {exc.strerror}") from exc
        return self.handle

    def write(self, chunk: bytes) -> None:
        _write(self._open(), chunk, self.offset, self.sync)
        self.offset += len(chunk)

    def finish(self) -> None:
        handle = self._open()
        if self.sync:
            os.fsync(handle.fileno())
        handle.close()

    def discard(self) -> None:
        """Close and remove what this object created (nothing if it never opened the file)."""
        if self.handle is None:
            return
        self.handle.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


class PosixStore:
    """Files on a local (or locally mounted) file system."""

    schemes: tuple[str, ...] = ("file",)

    def __init__(self, *, chunk_size: int = 1 << 20, fsync: bool = True) -> None:
        self._chunk_size = chunk_size
        self._fsync = fsync

    async def write(
        self, url: str, chunks: AsyncIterator[bytes], *, token: str | None = None
    ) -> None:
        """Write to a new file; a partial file is removed if anything fails.

        Each hand-off to a worker thread costs a wake-up, which a busy machine makes
        expensive: the file is opened with its first chunk and synced with its closing, so a
        small file takes two hand-offs (open and write, sync and close).
        """
        file = _NewFile(path_of(url), self._fsync)
        try:
            async for chunk in chunks:
                await anyio.to_thread.run_sync(file.write, chunk)
            await anyio.to_thread.run_sync(file.finish)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(file.discard)
            raise

    async def move(self, source: str, destination: str, *, token: str | None = None) -> None:
        """Atomic rename in place (both in the same folder), then fsync the folder."""
        src, dst = path_of(source), path_of(destination)

        def rename() -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            if self._fsync:
                _fsync_dir(dst.parent)

        try:
            await anyio.to_thread.run_sync(rename)
        except OSError as exc:
            raise StorageError(f"cannot move a file into place: {exc.strerror}") from exc

    async def delete(self, url: str, *, token: str | None = None) -> None:
        """Unlink; missing is fine."""
        path = path_of(url)
        try:
            await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
        except OSError as exc:
            raise StorageError(f"cannot delete a file: {exc.strerror}") from exc

    async def size(self, url: str, *, token: str | None = None) -> int | None:
        """Size in bytes, None if missing."""
        path = path_of(url)

        def stat() -> int | None:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                return None

        return await anyio.to_thread.run_sync(stat)

    async def read(
        self,
        url: str,
        *,
        offset: int = 0,
        length: int | None = None,
        token: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream the file from ``offset``; StorageError if it is missing or short."""
        path = path_of(url)
        try:
            handle = await anyio.to_thread.run_sync(lambda: path.open("rb", buffering=0))
        except OSError as exc:
            raise StorageError(f"cannot open a replica: {exc.strerror}") from exc
        try:
            if offset:
                await anyio.to_thread.run_sync(handle.seek, offset)
            remaining = length
            while remaining is None or remaining > 0:
                size = self._chunk_size if remaining is None else min(self._chunk_size, remaining)
                chunk = await anyio.to_thread.run_sync(handle.read, size)
                if not chunk:
                    if remaining:
                        raise StorageError("the replica is shorter than Rucio says")
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await anyio.to_thread.run_sync(handle.close)
