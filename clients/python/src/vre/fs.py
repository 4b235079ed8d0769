"""``vre://scope/name`` for fsspec (extra ``[fsspec]``): pandas, astropy, uproot open files.

>>> import pandas as pd
>>> pd.read_csv("vre://user.alice/events.csv")
>>> import fsspec
>>> fsspec.filesystem("vre").ls("user.alice/run42")

Reads go by HTTP ranges (random access without downloading); writes are uploaded when the
file is closed. The client is built as :class:`vre.Client` builds it (``VRE_URL``, token
discovery); ``fsspec.filesystem("vre", url=..., token=...)`` overrides.
"""

from __future__ import annotations

from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from vre.client import Client
from vre.datalake import Did
from vre.errors import NotFoundError


class VreFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """The Data Lake as a file system: the first path part is the scope, the rest the name."""

    protocol = "vre"
    root_marker = ""

    def __init__(
        self, url: str | None = None, token: str | None = None, client: Client | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.client = client or Client(url, token=token)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        text = str(path)
        if text.startswith("vre://"):
            text = text[len("vre://") :]
        return text.strip("/")

    @staticmethod
    def did(path: str) -> str:
        """``scope/name`` → ``scope:name``."""
        scope, _, name = VreFileSystem._strip_protocol(path).partition("/")
        return f"{scope}:{name}"

    def _entry(self, did: Did) -> dict[str, Any]:
        kind = "file" if did.type == "file" else "directory"
        return {
            "name": f"{did.scope}/{did.name}",
            "size": did.bytes if kind == "file" else 0,
            "type": kind,
            "adler32": did.adler32,
            "md5": did.md5,
            "metadata": did.metadata,
        }

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if "/" not in path:
            return {"name": path, "size": 0, "type": "directory"}
        try:
            return self._entry(self.client.datalake.stat(self.did(path)))
        except NotFoundError:
            if self.ls(path, detail=False):  # a "folder": a name prefix of files
                return {"name": path, "size": 0, "type": "directory"}
            raise FileNotFoundError(path) from None

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        scope, _, prefix = path.partition("/")
        pattern = f"{scope}:{prefix}/*" if prefix else f"{scope}:*"
        found = [self._entry(d) for d in self.client.datalake.ls(pattern)]
        if prefix:
            try:
                single = self.client.datalake.stat(f"{scope}:{prefix}")
            except NotFoundError:
                pass
            else:
                if single.type == "file":
                    found = [self._entry(single)]
        if not found and prefix:
            raise FileNotFoundError(path)
        return found if detail else [f["name"] for f in found]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> VreFile:
        return VreFile(self, path, mode=mode, **kwargs)

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        if start is None and end is None:
            return self.client.datalake.read_bytes(self.did(path))
        with self.open(path, "rb") as f:
            size = f.size
            begin = 0 if start is None else (start if start >= 0 else size + start)
            stop = size if end is None else (end if end >= 0 else size + end)
            f.seek(begin)
            return bytes(f.read(max(0, stop - begin)))

    def rm_file(self, path: str) -> None:
        raise NotImplementedError("the Data Lake deletes files through lifetimes and rules")


class VreFile(AbstractBufferedFile):  # type: ignore[misc]
    """A Data Lake file: range reads, or an upload on close."""

    def _fetch_range(self, start: int, end: int) -> bytes:
        if start >= end:
            return b""
        fs: VreFileSystem = self.fs
        scope, name = fs.did(self.path).split(":", 1)
        answer = fs.client.session.request(
            "GET",
            f"/datalake/files/{scope}/{name}",
            headers={"Range": f"bytes={start}-{end - 1}"},
        )
        return answer.content if answer.status_code == 206 else answer.content[start:end]

    def _initiate_upload(self) -> None:
        self._pending = bytearray()

    def _upload_chunk(self, final: bool = False) -> bool:
        self._pending += self.buffer.getvalue()
        if final:
            fs: VreFileSystem = self.fs
            fs.client.datalake.upload(bytes(self._pending), fs.did(self.path))
        return True
