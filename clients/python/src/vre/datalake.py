"""The Data Lake from Python: files by DID, as file objects, tables, uploads and downloads.

>>> import vre
>>> lake = vre.Client().datalake
>>> lake.upload("events.csv", "user.alice:events.csv", metadata={"run_number": 42})
>>> [d.did for d in lake.ls("user.alice:events*")]
['user.alice:events.csv']
>>> with lake.open("user.alice:events.csv") as f:     # seekable, read by HTTP ranges
...     header = f.readline()
>>> table = lake.table("user.alice:events.csv")        # astropy Table (extra [astropy])
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vre._http import Session, did_path, q
from vre.errors import ChecksumMismatchError, UnauthorizedError

if TYPE_CHECKING:
    from astropy.table import Table

CHUNK = 1 << 20
#: ``progress(done_bytes, total_bytes_or_None)`` — called as bytes move.
Progress = Callable[[int, int | None], None]


@contextlib.contextmanager
def _progress_bar(progress: Progress | bool | None, label: str) -> Iterator[Progress | None]:
    """``True``: a rich progress bar (terminal or notebook) for the transfer; a callable is
    used as it is; ``None``/``False``: nothing."""
    if not progress or callable(progress):
        yield progress or None
        return
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
    from rich.progress import Progress as Bars

    with Bars(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
              TransferSpeedColumn()) as bars:  # fmt: skip
        task = bars.add_task(label, total=None)
        yield lambda done, total: bars.update(task, completed=done, total=total)


@dataclass(frozen=True)
class Did:
    """A Data Lake DID (file, dataset or container) as the VRE describes it."""

    scope: str
    name: str
    type: str
    bytes: int | None = None
    adler32: str | None = None
    md5: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def did(self) -> str:
        """``scope:name``."""
        return f"{self.scope}:{self.name}"

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Did:
        """Build from the API's JSON."""
        return cls(
            scope=body["scope"],
            name=body["name"],
            type=str(body.get("type", "file")).lower(),
            bytes=body.get("bytes"),
            adler32=body.get("adler32"),
            md5=body.get("md5"),
            metadata=dict(body.get("metadata") or {}),
            raw=dict(body),
        )


@dataclass(frozen=True)
class UploadedFile:
    """The VRE's answer to an upload, its checksums already checked against ours."""

    did: str
    bytes: int
    adler32: str
    md5: str
    rse: str
    created: bool


def adler32_hex(value: int) -> str:
    """Rucio's adler32 spelling: 8 lowercase hex digits."""
    return f"{value & 0xFFFFFFFF:08x}"


class _Checksums:
    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.adler = 1
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.adler = zlib.adler32(chunk, self.adler)
        self.size += len(chunk)

    def check(self, what: str, *, adler32: str | None, md5: str | None) -> None:
        mine = (adler32_hex(self.adler), self.md5.hexdigest())
        if (adler32 and adler32 != mine[0]) or (md5 and md5 != mine[1]):
            raise ChecksumMismatchError(
                f"{what}: local adler32={mine[0]} md5={mine[1]}, "
                f"the VRE recorded adler32={adler32} md5={md5}"
            )


class RemoteFile(io.RawIOBase):
    """A Data Lake file read by HTTP ranges: seekable, read-only, nothing downloaded ahead.

    Wrapped in an :class:`io.BufferedReader` by :meth:`Datalake.open` so small reads are
    batched into ranges of ``block_size`` bytes.
    """

    def __init__(self, session: Session, did: str, size: int) -> None:
        super().__init__()
        self._session = session
        self._path = "/datalake/files/{}/{}".format(*map(q, did_path(did)))
        self.did = did
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        end = min(self._pos + len(view), self.size) - 1
        answer = self._session.request(
            "GET", self._path, headers={"Range": f"bytes={self._pos}-{end}"}
        )
        data = answer.content
        if answer.status_code == 200:  # a server ignoring Range: take our slice
            data = data[self._pos : end + 1]
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


class Datalake:
    """``Client().datalake``: scopes, DIDs, files, metadata, datasets, rules and usage."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- finding -------------------------------------------------------------------------
    def my_scope(self) -> str:
        """Your personal scope (``user.<name>``)."""
        return str(self._s.json("GET", "/datalake/scopes/mine")["scope"])

    def scopes(self) -> list[str]:
        """Every scope you can see."""
        body = self._s.json("GET", "/datalake/scopes")
        return [s["name"] for s in body]

    def ls(
        self,
        pattern: str,
        *,
        type: str = "all",
        metadata: Mapping[str, Any] | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Did]:
        """DIDs of a scope matching a name pattern and metadata.

        ``pattern`` is ``scope`` or ``scope:name-pattern`` (``*`` wildcards);
        ``metadata`` is ``{"key": value}`` (equality) or conditions such as
        ``["run_number>40", "datatype=raw"]``.
        """
        return list(self.iter(pattern, type=type, metadata=metadata, limit=limit))

    def find(self, pattern: str, **metadata: Any) -> list[Did]:
        """``ls`` with metadata equality as keyword arguments:
        ``find("user.alice:*", datatype="raw")``."""
        return self.ls(pattern, metadata=metadata)

    def iter(
        self,
        pattern: str,
        *,
        type: str = "all",
        metadata: Mapping[str, Any] | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Did]:
        """Like :meth:`ls`, page by page."""
        scope, _, name = pattern.partition(":")
        if isinstance(metadata, Mapping):
            conditions = [f"{k}={v}" for k, v in metadata.items()]
        else:
            conditions = list(metadata or [])
        params: dict[str, Any] = {"name": name or "*", "type": type, "meta": conditions}
        offset, seen = 0, 0
        while True:
            page = self._s.json(
                "GET", f"/datalake/dids/{q(scope)}", params={**params, "offset": offset}
            )
            for item in page["items"]:
                yield Did.from_api(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if page.get("next_offset") is None:
                return
            offset = page["next_offset"]

    def stat(self, did: str) -> Did:
        """One DID: type, size, checksums, metadata."""
        return Did.from_api(self._s.json("GET", "/datalake/dids/{}/{}".format(*_parts(did))))

    def exists(self, did: str) -> bool:
        """Whether the DID exists (and you may see it)."""
        from vre.errors import NotFoundError

        try:
            self.stat(did)
        except NotFoundError:
            return False
        return True

    # -- metadata, datasets, rules ---------------------------------------------------------
    def metadata(self, did: str) -> dict[str, Any]:
        """The DID's metadata."""
        return self.stat(did).metadata

    def set_metadata(self, did: str, metadata: Mapping[str, Any] | None = None, **more: Any) -> Did:
        """Add or change metadata keys: ``set_metadata(did, run_number=42)``."""
        body = {"metadata": {**(metadata or {}), **more}}
        path = "/datalake/dids/{}/{}/metadata".format(*_parts(did))
        return Did.from_api(self._s.json("POST", path, json=body))

    def create_dataset(
        self, did: str, *, metadata: Mapping[str, Any] | None = None, container: bool = False
    ) -> Did:
        """Create a dataset (or a container) ``scope:name``."""
        scope, name = did_path(did)
        body = {"name": name, "type": "container" if container else "dataset"}
        if metadata:
            body["metadata"] = dict(metadata)  # type: ignore[assignment]
        return Did.from_api(self._s.json("POST", f"/datalake/dids/{q(scope)}", json=body))

    def attach(self, dataset: str, dids: Iterable[str]) -> None:
        """Attach files (or datasets, to a container)."""
        path = "/datalake/dids/{}/{}/attach".format(*_parts(dataset))
        self._s.request("POST", path, json={"dids": list(dids)})

    def detach(self, dataset: str, dids: Iterable[str]) -> None:
        """Detach DIDs from a dataset or container."""
        path = "/datalake/dids/{}/{}/detach".format(*_parts(dataset))
        self._s.request("POST", path, json={"dids": list(dids)})

    def content(self, did: str, *, recursive: bool = False) -> list[Did]:
        """What a dataset or container holds (files with their checksums)."""
        path = "/datalake/dids/{}/{}/content".format(*_parts(did))
        body = self._s.json("GET", path, params={"recursive": recursive})
        items = body["items"] if isinstance(body, dict) else body
        return [Did.from_api(i) for i in items]

    def replicas(self, did: str) -> Any:
        """Where a file's replicas are."""
        return self._s.json("GET", "/datalake/dids/{}/{}/replicas".format(*_parts(did)))

    def add_rule(
        self,
        dids: str | Iterable[str],
        rse_expression: str,
        *,
        copies: int = 1,
        lifetime: int | None = None,
        comment: str | None = None,
    ) -> list[str]:
        """A replication rule; returns the new rule ids."""
        body: dict[str, Any] = {
            "dids": [dids] if isinstance(dids, str) else list(dids),
            "rse_expression": rse_expression,
            "copies": copies,
        }
        if lifetime is not None:
            body["lifetime"] = lifetime
        if comment is not None:
            body["comment"] = comment
        answer = self._s.json("POST", "/datalake/rules", json=body)
        return list(answer["ids"])

    def rules(self) -> list[dict[str, Any]]:
        """Your replication rules with their state."""
        return list(self._s.json("GET", "/datalake/rules"))

    def usage(self) -> dict[str, Any]:
        """Bytes used against your limit, per RSE."""
        return dict(self._s.json("GET", "/datalake/usage"))

    def rses(self) -> list[dict[str, Any]]:
        """The storage elements."""
        return list(self._s.json("GET", "/datalake/rses"))

    # -- bytes -----------------------------------------------------------------------------
    def open(self, did: str, *, block_size: int = CHUNK) -> io.BufferedReader:
        """A seekable, read-only binary file object reading the file by HTTP ranges."""
        info = self.stat(did)
        if info.type != "file" or info.bytes is None:
            raise IsADirectoryError(f"{did} is a {info.type}, not a file")
        return io.BufferedReader(RemoteFile(self._s, did, info.bytes), buffer_size=block_size)

    def read_bytes(self, did: str) -> bytes:
        """The whole file in memory (for small files; use :meth:`open` or :meth:`download`)."""
        return self._s.request("GET", "/datalake/files/{}/{}".format(*_parts(did))).content

    def table(self, did: str, *, format: str | None = None, **read_options: Any) -> Table:
        """The file as an astropy :class:`~astropy.table.Table` (extra ``[astropy]``).

        The format follows the name: ``.fits``/``.fit`` (FITS), ``.vot``/``.xml`` (VOTable),
        ``.ecsv``, ``.csv``, ``.parquet``/``.pq``; ``format=`` overrides (astropy's names).
        """
        from astropy.table import Table

        fmt = format or guess_table_format(did)
        if fmt == "fits":
            with self.open(did) as remote:  # FITS reads headers and seeks: ranges pay off
                return Table.read(remote, format=fmt, **read_options)
        data = io.BytesIO(self.read_bytes(did))
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return Table(pq.read_table(data).to_pydict(), **read_options)
        if fmt.startswith("ascii"):
            return Table.read(data.getvalue().decode("utf-8"), format=fmt, **read_options)
        return Table.read(data, format=fmt, **read_options)

    def upload(
        self,
        source: str | os.PathLike[str] | bytes | IO[bytes],
        did: str,
        *,
        rse: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        dataset: str | None = None,
        progress: Progress | bool | None = None,
    ) -> UploadedFile:
        """Upload a local file, bytes or a binary file object as ``did``, streamed.

        The md5 goes along as ``Content-MD5`` (the VRE refuses a mismatch and registers
        nothing) and the answer's adler32 and md5 are compared with ours. ``progress=True``
        shows a progress bar; a callable gets ``(bytes done, total)``.
        """
        scope, name = did_path(did)
        params: dict[str, Any] = {"meta": [f"{k}={v}" for k, v in (metadata or {}).items()]}
        if rse:
            params["rse"] = rse
        if dataset:
            params["dataset"] = dataset
        size, md5 = _size_and_md5(source)
        headers = {"Content-MD5": base64.b64encode(md5).decode(), "Content-Length": str(size)}
        path = f"/datalake/files/{q(scope)}/{q(name)}"
        with _progress_bar(progress, did) as report:
            for attempt in (1, 2):  # a streamed body cannot be replayed by the auth flow
                sums = _Checksums()
                try:
                    answer = self._s.json(
                        "PUT",
                        path,
                        params=params,
                        headers=headers,
                        content=_chunks(source, sums, size, report),
                    )
                    break
                except UnauthorizedError:
                    if attempt == 2:
                        raise
        sums.check(did, adler32=answer.get("adler32"), md5=answer.get("md5"))
        return UploadedFile(
            did=f"{answer['scope']}:{answer['name']}",
            bytes=answer["bytes"],
            adler32=answer["adler32"],
            md5=answer["md5"],
            rse=answer["rse"],
            created=bool(answer.get("created", True)),
        )

    def download(
        self,
        did: str,
        path: str | os.PathLike[str] = ".",
        *,
        resume: bool = True,
        progress: Progress | bool | None = None,
    ) -> Path:
        """Download a file to ``path`` (a folder: the DID's base name in it), streamed.

        Bytes go to ``<target>.part`` first; an interrupted download goes on from where it
        stopped (``resume``); the whole file is checked against the recorded adler32 and md5
        before it takes its name.
        """
        info = self.stat(did)
        target = Path(path)
        if target.is_dir():
            target = target / info.name.rsplit("/", 1)[-1]
        part = target.with_name(target.name + ".part")
        sums = _Checksums()
        have = part.stat().st_size if resume and part.exists() else 0
        if info.bytes is not None and have > info.bytes:
            have = 0
        if have:
            with part.open("rb") as done:
                for chunk in iter(lambda: done.read(CHUNK), b""):
                    sums.update(chunk)
        headers = {"Range": f"bytes={have}-"} if have and have < (info.bytes or 0) else {}
        url = "/datalake/files/{}/{}".format(*_parts(did))
        if have == info.bytes:
            pass  # complete already: just verify
        else:
            with (
                _progress_bar(progress, did) as report,
                self._s.stream("GET", url, headers=headers) as answer,
            ):
                mode = "ab" if answer.status_code == 206 else "wb"
                if mode == "wb":
                    sums = _Checksums()
                with part.open(mode) as out:
                    for chunk in answer.iter_bytes(CHUNK):
                        out.write(chunk)
                        sums.update(chunk)
                        if report:
                            report(sums.size, info.bytes)
        try:
            sums.check(did, adler32=info.adler32, md5=info.md5)
        except ChecksumMismatchError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)
        return target


def guess_table_format(name: str) -> str:
    """astropy's format name for a file name."""
    lower = name.lower().removesuffix(".gz")
    for suffixes, fmt in (
        ((".fits", ".fit", ".fts"), "fits"),
        ((".vot", ".votable", ".xml"), "votable"),
        ((".ecsv",), "ascii.ecsv"),
        ((".csv",), "ascii.csv"),
        ((".tsv",), "ascii.tab"),
        ((".parquet", ".pq"), "parquet"),
    ):
        if lower.endswith(suffixes):
            return fmt
    raise ValueError(f"cannot tell the table format of {name!r}: pass format=")


def _parts(did: str) -> tuple[str, str]:
    scope, name = did_path(did)
    return q(scope), q(name)


def _size_and_md5(source: str | os.PathLike[str] | bytes | IO[bytes]) -> tuple[int, bytes]:
    md5 = hashlib.md5(usedforsecurity=False)
    if isinstance(source, bytes):
        md5.update(source)
        return len(source), md5.digest()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                md5.update(chunk)
        return os.path.getsize(source), md5.digest()
    start = source.tell()
    size = 0
    for chunk in iter(lambda: source.read(CHUNK), b""):
        md5.update(chunk)
        size += len(chunk)
    source.seek(start)
    return size, md5.digest()


def _chunks(
    source: str | os.PathLike[str] | bytes | IO[bytes],
    sums: _Checksums,
    size: int,
    progress: Progress | None,
) -> Iterator[bytes]:
    if isinstance(source, bytes):
        stream: IO[bytes] = io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        stream = open(source, "rb")  # noqa: SIM115 - closed below
    else:
        stream = source
        start = source.tell()
    try:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            sums.update(chunk)
            if progress:
                progress(sums.size, size)
            yield chunk
    finally:
        if isinstance(source, str | os.PathLike):
            stream.close()
        elif not isinstance(source, bytes):
            source.seek(start)
