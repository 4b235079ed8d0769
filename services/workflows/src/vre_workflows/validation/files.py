"""The analysis directory sent with a reana.yaml: loose files or a tar/zip, safely unpacked.

An archive may hold only regular files and directories, every member a relative path inside
the analysis directory (no ``..``, no absolute path, no link, no device), at most
``MAX_MEMBERS`` members and ``MAX_UNPACKED_BYTES`` bytes once unpacked (counted as they are
read, so a member that lies about its size is caught too). When every member sits under one
top-level folder (a repository's archive, ``git archive --prefix``), that folder is the
analysis directory.
"""

from __future__ import annotations

import io
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from vre_common.errors import InvalidInputError, PayloadTooLargeError
from vre_workflows.spec import check_relative_path

MAX_MEMBERS = 5000
MAX_UNPACKED_BYTES = 512 << 20
SPEC_NAMES = ("reana.yaml", "reana.yml")
_CHUNK = 1 << 20
COPY_LIMIT = 4 << 20
_SPOOL = 1 << 20


def _archive_error(member: str, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"archive member {member!r}: {reason}",
        errors=[{"loc": ["archive", member], "msg": reason, "type": "archive"}],
    )


@dataclass
class WorkflowFiles:
    """Files by workspace path (normalised); each a seekable binary stream or a file on disk."""

    streams: dict[str, BinaryIO] = field(default_factory=dict)
    on_disk: dict[str, Path] = field(default_factory=dict)
    _owned: list[IO[bytes]] = field(default_factory=list, repr=False)

    @classmethod
    def of_submission(
        cls,
        inline: dict[str, str],
        uploads: list[Any],
        copied_from: tuple[Any, list[Any]] | None,
    ) -> WorkflowFiles:
        """A run submission's files: inline texts, multipart uploads, a re-run's copies.

        ``uploads`` have ``path`` and ``file``; ``copied_from`` is (run paths with an
        ``uploads`` folder, inputs with a ``path``).
        """
        files = cls()
        for path, text in inline.items():
            files.add_text(path, text, loc=["files", path])
        for upload in uploads:
            files.add_stream(upload.path, upload.file, loc=["files", upload.path])
        if copied_from is not None:
            folder, items = copied_from
            for item in items:
                files.add_file(
                    item.path, Path(folder.uploads) / item.path, loc=["files", item.path]
                )
        return files

    def paths(self) -> set[str]:
        """Every workspace path held."""
        return set(self.streams) | set(self.on_disk)

    def __bool__(self) -> bool:
        return bool(self.streams or self.on_disk)

    def add_stream(self, path: str, stream: BinaryIO, *, loc: list[str | int]) -> None:
        """Add a file; a path that would leave the workspace, or is given twice, is a 422."""
        normalized = _checked(path, loc)
        if normalized in self.streams or normalized in self.on_disk:
            raise InvalidInputError(
                f"{path!r}: given twice",
                errors=[{"loc": loc, "msg": "given twice", "type": "path"}],
            )
        self.streams[normalized] = stream

    def add_text(self, path: str, text: str | bytes, *, loc: list[str | int]) -> None:
        """Add a small file held in memory."""
        data = text.encode() if isinstance(text, str) else text
        self.add_stream(path, io.BytesIO(data), loc=loc)

    def add_file(self, path: str, source: Path, *, loc: list[str | int]) -> None:
        """Add a file already on disk (a re-run's copied inputs)."""
        normalized = _checked(path, loc)
        self.on_disk[normalized] = source

    def write_into(self, root: Path, *, copy_limit: int = COPY_LIMIT) -> None:
        """Copy the files under ``root`` (streams are rewound so that they can be read again).

        A file larger than ``copy_limit`` is written empty: the engines' loaders read workflow
        descriptions, and only check that data files exist.
        """
        base = root.resolve()
        for path, stream in self.streams.items():
            target = _inside(base, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            stream.seek(0, io.SEEK_END)
            size = stream.tell()
            stream.seek(0)
            with target.open("wb") as out:
                if size <= copy_limit:
                    shutil.copyfileobj(stream, out, _CHUNK)
            stream.seek(0)
        for path, source in self.on_disk.items():
            target = _inside(base, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.stat().st_size <= copy_limit:
                shutil.copyfile(source, target)
            else:
                target.touch()

    def pop_spec(self) -> tuple[str, bytes] | None:
        """The analysis directory's reana.yaml (or reana.yml): name and bytes (it stays a file)."""
        for name in SPEC_NAMES:
            stream = self.streams.get(name)
            if stream is not None:
                stream.seek(0)
                data = stream.read()
                stream.seek(0)
                return name, data
        return None

    def close(self) -> None:
        """Drop the spooled copies this object made."""
        for spooled in self._owned:
            spooled.close()
        self._owned.clear()


def _checked(path: str, loc: list[str | int]) -> str:
    reason = check_relative_path(path)
    if reason:
        raise InvalidInputError(
            f"{path!r}: {reason}", errors=[{"loc": loc, "msg": reason, "type": "path"}]
        )
    return posixpath.normpath(path)


def _inside(base: Path, path: str) -> Path:
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise InvalidInputError(f"{path!r} leaves the workspace")
    return target


@dataclass
class _Member:
    name: str
    size: int
    kind: str  # "file", "dir" or what else it is
    open: object


def _tar_members(archive: tarfile.TarFile) -> Iterator[_Member]:
    for info in archive:
        if info.isdir():
            kind = "dir"
        elif info.isreg():
            kind = "file"
        elif info.issym() or info.islnk():
            kind = "a link"
        else:
            kind = "a device, FIFO or other special file"
        yield _Member(info.name, info.size, kind, lambda info=info: archive.extractfile(info))


def _zip_members(archive: zipfile.ZipFile) -> Iterator[_Member]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        typed = stat.S_IFMT(mode) != 0  # archivers that record no Unix mode mean a file
        if info.is_dir():
            kind = "dir"
        elif typed and stat.S_ISLNK(mode):
            kind = "a link"
        elif typed and not stat.S_ISREG(mode):
            kind = "a device, FIFO or other special file"
        else:
            kind = "file"
        yield _Member(info.filename, info.file_size, kind, lambda info=info: archive.open(info))


def read_archive(
    source: BinaryIO,
    *,
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_UNPACKED_BYTES,
) -> WorkflowFiles:
    """Unpack a tar (plain, gzip, bzip2, xz) or zip archive into spooled files."""
    source.seek(0)
    try:
        if zipfile.is_zipfile(source):
            source.seek(0)
            zip_archive = zipfile.ZipFile(source)
            return _unpack(_zip_members(zip_archive), max_members, max_bytes)
        source.seek(0)
        with tarfile.open(fileobj=source, mode="r:*") as tar_archive:
            return _unpack(_tar_members(tar_archive), max_members, max_bytes)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise InvalidInputError(
            f"the archive cannot be read as tar (plain, gzip, bzip2, xz) or zip: {exc}",
            errors=[{"loc": ["archive"], "msg": str(exc), "type": "archive"}],
        ) from exc


def _unpack(  # noqa: PLR0912 - one refusal per kind of bad member
    members: Iterator[_Member], max_members: int, max_bytes: int
) -> WorkflowFiles:
    files: list[tuple[str, IO[bytes]]] = []
    total = 0
    count = 0
    try:
        for member in members:
            count += 1
            if count > max_members:
                raise PayloadTooLargeError(f"the archive holds more than {max_members} members")
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            name = name.rstrip("/")
            if not name or name == ".":
                continue
            if member.kind == "dir":
                reason = check_relative_path(name)
                if reason:
                    raise _archive_error(member.name, reason)
                continue
            if member.kind != "file":
                raise _archive_error(
                    member.name,
                    f"is {member.kind}: an analysis archive may hold only files and directories",
                )
            reason = check_relative_path(name)
            if reason:
                raise _archive_error(member.name, reason)
            if total + member.size > max_bytes:
                raise PayloadTooLargeError(f"the archive unpacks to more than {max_bytes} bytes")
            handle = member.open()  # type: ignore[operator]
            spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - owned
            files.append((name, spooled))
            if handle is None:
                continue
            with handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:  # the member said less than it holds
                        raise PayloadTooLargeError(
                            f"the archive unpacks to more than {max_bytes} bytes"
                        )
                    spooled.write(chunk)
            spooled.seek(0)
    except BaseException:
        for _, spooled in files:
            spooled.close()
        raise
    prefix = _common_folder([name for name, _ in files])
    result = WorkflowFiles()
    result._owned.extend(spooled for _, spooled in files)
    try:
        for name, spooled in files:
            path = name[len(prefix) :] if prefix else name
            result.add_stream(path, spooled, loc=["archive", name])  # type: ignore[arg-type]
    except BaseException:
        result.close()
        raise
    return result


def _common_folder(names: list[str]) -> str:
    """``folder/`` when every file sits under that one folder and none is at the top."""
    if not names or any(name in SPEC_NAMES for name in names):
        return ""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop() + "/"
    return ""
