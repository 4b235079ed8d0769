"""Where a run's files live under the data folder: one place for the layout."""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from vre_workflows.spec import check_relative_path

CHUNK = 1 << 20


@dataclass(frozen=True)
class RunPaths:
    """``<data>/runs/<id>/``: ``workspace/`` (what steps see), ``logs/``, ``tmp/``, ``uploads/``.

    Logs and pristine copies of uploaded inputs stay outside the workspace, so a step can
    neither rewrite its own log nor change what a re-run starts from.
    """

    root: Path

    @classmethod
    def of(cls, data_dir: Path, run_id: str) -> RunPaths:
        """The paths of run ``run_id``."""
        return cls(data_dir / "runs" / run_id)

    @property
    def workspace(self) -> Path:
        """The workspace (steps' working directory)."""
        return self.root / "workspace"

    @property
    def logs(self) -> Path:
        """Per-step log files."""
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        """Scratch space of the engines."""
        return self.root / "tmp"

    @property
    def uploads(self) -> Path:
        """Pristine copies of uploaded and inline input files."""
        return self.root / "uploads"

    def step_log(self, position: int) -> Path:
        """The log file of step ``position``."""
        return self.logs / f"step-{position}.log"

    def create(self) -> None:
        """Make every folder."""
        for path in (self.workspace, self.logs, self.tmp, self.uploads):
            path.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        """Delete the run's files (workspace, logs, uploads)."""
        shutil.rmtree(self.root, ignore_errors=True)


def inside(base: Path, relative: str) -> Path:
    """``base/relative``, refusing anything that would leave ``base`` (also via symlinks)."""
    reason = check_relative_path(relative)
    if reason:
        raise ValueError(f"{relative!r}: {reason}")
    target = (base / relative).resolve()
    root = base.resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"{relative!r} leaves the workspace")
    return target


@dataclass(frozen=True)
class FileDigest:
    """Size and Rucio's checksums of a file."""

    bytes: int
    adler32: str
    md5: str


def digest_file(path: Path) -> FileDigest:
    """adler32 + md5 + size, reading in chunks (blocking: call in a thread)."""
    md5 = hashlib.md5(usedforsecurity=False)
    adler = 1
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            md5.update(chunk)
            adler = zlib.adler32(chunk, adler)
            size += len(chunk)
    return FileDigest(bytes=size, adler32=f"{adler & 0xFFFFFFFF:08x}", md5=md5.hexdigest())


def link_or_copy(source: Path, target: Path, *, prefer_link: bool, euid: int | None = None) -> str:
    """Place ``source`` at ``target``: a hard link when allowed, possible and safe, else a copy.

    Returns "link" or "copy". A hard-linked input shares its inode with the Data Lake replica,
    so it is made read-only (replicas are immutable; a step must write elsewhere). Root
    ignores permission bits, so a service running as root (``euid`` 0) always copies: a step
    could otherwise rewrite the replica itself.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if prefer_link and (os.geteuid() if euid is None else euid) != 0:
        try:
            os.link(source, target)
        except OSError:
            pass
        else:
            mode = target.stat().st_mode
            try:
                if mode & 0o222:
                    os.chmod(target, mode & ~0o222)
            except OSError:
                # Cannot protect the replica from a step writing into it: copy instead.
                target.unlink()
            else:
                return "link"
    shutil.copyfile(source, target)
    return "copy"
