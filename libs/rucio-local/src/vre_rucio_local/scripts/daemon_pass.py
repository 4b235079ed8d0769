"""Rucio daemon passes for the embedded server (run by the Rucio server venv's Python).

One pass runs, in order: undertaker, judge cleaner, judge evaluator, conveyor submitter,
poller and finisher, reaper (greedy), abacus account, RSE and collection-replica counters.
``--once`` runs one pass and prints its report; ``--serve`` runs a pass for each ``run``
line read on stdin and prints each report (importing Rucio takes ≈ 2 s, a pass ≈ 0.3 s);
``--loop`` runs a pass every ``--interval`` seconds until SIGINT/SIGTERM, and SIGUSR1
starts the next pass at once. A report is one stdout line: ``REPORT_PREFIX`` + JSON.
Passes from several processes are serialised with ``flock`` on ``--lock``.

There is no FTS here: the conveyor's ``mock`` transfer tool is replaced, inside this
process only, by :class:`CopyingTransfertool`, which really copies each file from the
source PFN to the destination PFN (``file://`` and WebDAV ``https://``) and checks size and
checksum on the way. ``file`` is also made compatible with ``https`` so that rules can move
data between POSIX and WebDAV storage elements.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

LOGGER = logging.getLogger("vre.rucio.daemons")
CHUNK_SIZE = 1024 * 1024
HTTP_TIMEOUT = 300.0
REPORT_PREFIX = "@vre-daemon-pass@ "


class TransferCopyError(Exception):
    """A file could not be copied from any of its sources."""


# ---------------------------------------------------------------------------------------------
# Byte movers (no Rucio imports: usable and testable on their own)


class _Digest:
    """Running size, adler32 and md5 of the bytes that went through."""

    def __init__(self) -> None:
        self.size = 0
        self._adler = 1
        self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._adler = zlib.adler32(chunk, self._adler)
        self._md5.update(chunk)

    @property
    def adler32(self) -> str:
        return f"{self._adler & 0xFFFFFFFF:08x}"

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def check(self, size: int | None, adler32: str | None, md5: str | None) -> None:
        if size is not None and size != self.size:
            raise TransferCopyError(f"size mismatch: expected {size}, copied {self.size}")
        if adler32 and adler32.lower().zfill(8) != self.adler32:
            raise TransferCopyError(f"adler32 mismatch: expected {adler32}, got {self.adler32}")
        if md5 and md5.lower() != self.md5:
            raise TransferCopyError(f"md5 mismatch: expected {md5}, got {self.md5}")


class _SizedReader:
    """A file-like reader with a known length, so that ``requests`` sends Content-Length."""

    def __init__(self, chunks: Iterator[bytes], length: int, digest: _Digest) -> None:
        self._chunks = chunks
        self._length = length
        self._digest = digest
        self._chunk = b""
        self._offset = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        """Return up to ``size`` bytes (fewer at a chunk boundary; ``b""`` at the end)."""
        if self._offset >= len(self._chunk):
            self._chunk = next(self._chunks, b"")
            self._offset = 0
            self._digest.update(self._chunk)
        end = len(self._chunk) if size < 0 else self._offset + size
        data = self._chunk[self._offset : end]
        self._offset += len(data)
        return data


def _http_session() -> Any:
    import requests

    session = requests.Session()
    token = os.environ.get("BEARER_TOKEN")
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    proxy = os.environ.get("X509_USER_PROXY")
    if proxy:
        session.cert = proxy
    return session


@contextlib.contextmanager
def _open_source(url: str) -> Iterator[Iterator[bytes]]:
    parts = urlsplit(url)
    if parts.scheme == "file":
        with Path(unquote(parts.path)).open("rb") as handle:
            yield iter(functools.partial(handle.read, CHUNK_SIZE), b"")
    elif parts.scheme in {"https", "http", "davs"}:
        http_url = url.replace("davs://", "https://", 1)
        with (
            _http_session() as session,
            session.get(http_url, stream=True, timeout=HTTP_TIMEOUT) as response,
        ):
            response.raise_for_status()
            yield response.iter_content(CHUNK_SIZE)
    else:
        raise TransferCopyError(f"unsupported source scheme {parts.scheme!r} in {url}")


def _write_file(path: Path, chunks: Iterable[bytes], digest: _Digest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with partial.open("wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _mkcol_parents(session: Any, url: str) -> None:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s][:-1]
    for depth in range(1, len(segments) + 1):
        folder = "/" + "/".join(segments[:depth]) + "/"
        session.request("MKCOL", parts._replace(path=folder).geturl(), timeout=HTTP_TIMEOUT)


def copy_file(
    source_url: str,
    dest_url: str,
    *,
    size: int | None = None,
    adler32: str | None = None,
    md5: str | None = None,
) -> None:
    """Copy one file between PFNs, verifying size and checksums; nothing is left on failure."""
    dest = urlsplit(dest_url)
    digest = _Digest()
    if dest.scheme == "file":
        path = Path(unquote(dest.path))
        with _open_source(source_url) as chunks:
            _write_file(path, chunks, digest)
        try:
            digest.check(size, adler32, md5)
        except TransferCopyError:
            path.unlink(missing_ok=True)
            raise
        return
    if dest.scheme not in {"https", "http", "davs"}:
        raise TransferCopyError(f"unsupported destination scheme {dest.scheme!r} in {dest_url}")
    http_url = dest_url.replace("davs://", "https://", 1)
    with _http_session() as session:
        for attempt in range(2):
            digest = _Digest()
            with _open_source(source_url) as chunks:
                body: _SizedReader | bytes
                if size is None:
                    body = b"".join(chunks)
                    digest.update(body)
                else:
                    body = _SizedReader(iter(chunks), size, digest)
                response = session.put(http_url, data=body, timeout=HTTP_TIMEOUT)
            if response.status_code == 409 and attempt == 0:
                # Plain WebDAV servers refuse a PUT under a missing folder: create it, retry.
                _mkcol_parents(session, http_url)
                continue
            response.raise_for_status()
            break
        try:
            digest.check(size, adler32, md5)
        except TransferCopyError:
            session.delete(http_url, timeout=HTTP_TIMEOUT)
            raise


# ---------------------------------------------------------------------------------------------
# Rucio integration (imports rucio lazily: RUCIO_CONFIG must be set first)


def install_copying_transfertool() -> None:
    """Make the conveyor's ``mock`` transfer tool copy bytes, and let ``file`` meet ``https``."""
    from rucio.common.constants import SCHEME_MAP
    from rucio.core import transfer as transfer_core
    from rucio.transfertool.mock import MockTransfertool

    class CopyingTransfertool(MockTransfertool):  # type: ignore[misc]
        """Rucio's mock transfer tool, except that ``submit`` really copies the files."""

        external_name = "mock"
        supported_schemes = {"mock", "file", "https", "davs"}

        def group_into_submit_jobs(self, transfers: Iterable[list[Any]]) -> list[dict[str, Any]]:
            # One job per path: a failed copy then fails its own request, not a whole batch.
            return [{"transfers": list(path), "job_params": {}} for path in transfers]

        def submit(
            self, transfers: Iterable[Any], job_params: dict[str, str], timeout: int | None = None
        ) -> str:
            for transfer in transfers:
                _copy_transfer(transfer)
            return str(uuid.uuid4())

    transfer_core.TRANSFERTOOL_CLASSES_BY_NAME["mock"] = CopyingTransfertool
    for scheme in ("https", "davs"):
        if "file" not in SCHEME_MAP.setdefault(scheme, [scheme]):
            SCHEME_MAP[scheme].append("file")
    SCHEME_MAP.setdefault("file", ["file"])
    for scheme in ("https", "davs"):
        if scheme not in SCHEME_MAP["file"]:
            SCHEME_MAP["file"].append(scheme)


def _copy_transfer(transfer: Any) -> None:
    rws = transfer.rws
    dest_url = transfer.dest_url
    errors: list[str] = []
    for source in transfer.sources or [transfer.src]:
        source_url = transfer.source_url(source)
        try:
            copy_file(
                source_url,
                dest_url,
                size=rws.byte_count,
                adler32=rws.adler32,
                md5=rws.md5,
            )
        except Exception as error:  # every failure just means "try the next source"
            LOGGER.warning("copy %s -> %s failed: %s", source_url, dest_url, error)
            errors.append(f"{source_url}: {error}")
        else:
            LOGGER.info("copied %s -> %s (%s bytes)", source_url, dest_url, rws.byte_count)
            return
    raise TransferCopyError(f"{rws.scope}:{rws.name} to {dest_url}: " + "; ".join(errors))


def _run_daemon_once(executable: str, run_once_fnc: Callable[..., Any]) -> None:
    # The daemons' own entry points wait 1-10 s for "partition rebalancing" even with
    # once=True; a single local worker has nothing to rebalance.
    from rucio.daemons.common import run_daemon

    run_daemon(
        once=True,
        graceful_stop=threading.Event(),
        executable=executable,
        partition_wait_time=0,
        sleep_time=60,
        run_once_fnc=run_once_fnc,
    )


def pass_steps() -> list[tuple[str, Callable[[], None]]]:
    """The daemons of one pass, in the order that lets one pass finish a simple rule."""
    from rucio.daemons.abacus import account as abacus_account
    from rucio.daemons.abacus import collection_replica as abacus_collection
    from rucio.daemons.abacus import rse as abacus_rse
    from rucio.daemons.conveyor.finisher import finisher
    from rucio.daemons.conveyor.poller import poller
    from rucio.daemons.conveyor.submitter import submitter
    from rucio.daemons.judge import cleaner, evaluator
    from rucio.daemons.reaper.reaper import reaper
    from rucio.daemons.undertaker.undertaker import undertaker

    return [
        ("undertaker", lambda: undertaker(once=True)),
        (
            "judge-cleaner",
            lambda: _run_daemon_once(
                cleaner.DAEMON_NAME, functools.partial(cleaner.run_once, paused_rules={})
            ),
        ),
        (
            "judge-evaluator",
            lambda: _run_daemon_once(
                evaluator.DAEMON_NAME,
                functools.partial(evaluator.run_once, paused_dids={}, did_limit=100),
            ),
        ),
        (
            "conveyor-submitter",
            lambda: submitter(once=True, partition_wait_time=0, transfertools=["mock"]),
        ),
        (
            "conveyor-poller",
            lambda: poller(once=True, partition_wait_time=0, older_than=0, transfertool="mock"),
        ),
        ("conveyor-finisher", lambda: finisher(once=True, partition_wait_time=0)),
        (
            "reaper",
            lambda: reaper(rses=[], include_rses=None, exclude_rses=None, once=True, greedy=True),
        ),
        ("abacus-account", lambda: abacus_account.account_update(once=True)),
        ("abacus-rse", lambda: abacus_rse.rse_update(once=True)),
        (
            "abacus-collection-replica",
            lambda: _run_daemon_once(
                abacus_collection.DAEMON_NAME,
                functools.partial(abacus_collection.run_once, limit=1000),
            ),
        ),
    ]


@contextlib.contextmanager
def _pass_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_pass(steps: list[tuple[str, Callable[[], None]]], lock: Path) -> dict[str, Any]:
    """Run every step once (a failing step does not stop the others) and report timings."""
    report: dict[str, Any] = {"steps": {}, "errors": {}}
    with _pass_lock(lock):
        started = time.perf_counter()
        for name, step in steps:
            step_started = time.perf_counter()
            try:
                step()
            except Exception as error:
                LOGGER.exception("daemon step %s failed", name)
                report["errors"][name] = f"{type(error).__name__}: {error}"
            report["steps"][name] = round(time.perf_counter() - step_started, 3)
        report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one pass or the loop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="run one pass and exit")
    mode.add_argument("--serve", action="store_true", help="run a pass per 'run' stdin line")
    mode.add_argument("--loop", action="store_true", help="run a pass every --interval seconds")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    LOGGER.setLevel(logging.INFO)  # copies and failures are always worth a line
    install_copying_transfertool()
    steps = pass_steps()

    if args.once:
        report = run_pass(steps, args.lock)
        print(REPORT_PREFIX + json.dumps(report), flush=True)
        return 1 if report["errors"] else 0

    if args.serve:
        for line in sys.stdin:
            if line.strip() == "run":
                report = run_pass(steps, args.lock)
                print(REPORT_PREFIX + json.dumps(report), flush=True)
        return 0  # stdin closed: the supervisor is done with us

    stop = threading.Event()
    wake = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGUSR1, lambda signum, frame: wake.set())
    LOGGER.info("daemon loop started, interval %.1f s", args.interval)
    while not stop.is_set():
        wake.clear()
        report = run_pass(steps, args.lock)
        LOGGER.log(
            logging.WARNING if report["errors"] else logging.DEBUG,
            "pass done: %s",
            json.dumps(report),
        )
        wake.wait(args.interval)
    LOGGER.info("daemon loop stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
