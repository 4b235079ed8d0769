"""Rules that need no Rucio: names, checksums, ranges, filters, error translation, OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from typing import Any

import httpx
import pytest

from vre_common.clients.datalake import DatalakeClient, QuotaRefusedError
from vre_common.errors import (
    BackendUnavailableError,
    BadRequestError,
    ConflictError,
    InvalidInputError,
    InvalidTokenError,
    NotFoundError,
    QuotaExceededError,
)
from vre_datalake.backends.rucio.rest import translate
from vre_datalake.checksums import Checksummer, etag_for, expected_md5
from vre_datalake.errors import (
    ContentConflictError,
    DidNotFoundError,
    InvalidNameError,
    QuotaError,
    RangeNotSatisfiableError,
    RseNotFoundError,
    RucioRefusedError,
    UploadAbortedError,
)
from vre_datalake.handlers.files import parse_range
from vre_datalake.handlers.params import parse_filters, parse_metadata
from vre_datalake.main import create_app
from vre_datalake.names import (
    account_name_from,
    check_meta_key,
    check_name,
    check_rse,
    check_scope,
    parse_did,
)


@pytest.mark.parametrize(
    "name",
    ["a", "run42/events.fits", "A-b_c.d/e.f", "x" * 250, "0/1/2"],
)
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("/abs", "start with '/'"),
        ("a/", "end with '/'"),
        ("a//b", "'//'"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("./a", "'.'"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\u202eb", "control"),
        ("x" * 251, "at most 250"),
        ("é", "ASCII"),
        ("a b", "ASCII"),
        ("a/.hidden", "start with a letter or digit"),
        ("dir/metadata", "reserved"),
    ],
)
def test_bad_names(name: str, reason: str) -> None:
    with pytest.raises(InvalidNameError) as error:
        check_name(name)
    assert reason in error.value.detail
    assert error.value.errors[0]["loc"] == ["name"]


def test_scopes_rses_keys_dids() -> None:
    assert check_scope("user.alice") == "user.alice"
    for bad in ("", "a b", "x" * 26, "..", "a/b"):
        with pytest.raises(InvalidNameError):
            check_scope(bad)
    assert check_rse("VRE-DISK-1") == "VRE-DISK-1"
    for bad in ("vre-disk", "A--B", "-A", "A B"):
        with pytest.raises(InvalidNameError):
            check_rse(bad)
    assert check_meta_key("run_number") == "run_number"
    for bad in ("1st", "a.b", "a-b", "", "k" * 101):
        with pytest.raises(InvalidNameError):
            check_meta_key(bad)
    assert parse_did("user.alice:a/b") == ("user.alice", "a/b")
    with pytest.raises(InvalidNameError):
        parse_did("no-colon")


def test_account_names() -> None:
    assert account_name_from("Alice", max_length=20) == "alice"
    assert account_name_from("Jérôme Dupont", max_length=20) == "jerome-dupont"
    assert account_name_from("a.b@example.org", max_length=20) == "a-b-example-org"
    assert account_name_from("日本", max_length=20) == "user"
    assert len(account_name_from("x" * 40, max_length=20)) == 20


def test_checksums_and_headers() -> None:
    data = b"hello world"
    sums = Checksummer()
    sums.update(data[:5])
    sums.update(data[5:])
    assert sums.md5 == hashlib.md5(data).hexdigest()
    assert sums.adler32 == "1a0b045d"
    b64 = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert expected_md5(b64, None) == sums.md5
    assert expected_md5(None, f"sha-256=xyz, md5={b64}") == sums.md5
    assert expected_md5(sums.md5.upper(), None) == sums.md5
    assert expected_md5(None, "sha-256=xyz") is None
    with pytest.raises(BadRequestError):
        expected_md5("not base64!", None)
    with pytest.raises(BadRequestError):
        expected_md5(b64, "md5=" + base64.b64encode(b"0" * 16).decode())
    assert etag_for("1a0b045d", None) == '"adler32-1a0b045d"'


def test_ranges() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-5", 100) == (95, 99)
    assert parse_range("bytes=50-500", 100) == (50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None  # multiple ranges: whole file
    assert parse_range("items=0-1", 100) is None
    for bad in ("bytes=100-", "bytes=5-2", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiableError):
            parse_range(bad, 100)


def test_filters_and_metadata_params() -> None:
    filters = parse_filters(["run_number>=10", "datatype=raw", "version!=v1", 'name2="7"'])
    assert [(f.key, f.op, f.value) for f in filters] == [
        ("run_number", "gte", 10),
        ("datatype", "eq", "raw"),
        ("version", "ne", "v1"),
        ("name2", "eq", "7"),
    ]
    with pytest.raises(InvalidNameError) as error:
        parse_filters(["ok=1", "no operator"])
    assert error.value.errors[0]["loc"] == ["query", "meta", 1]
    assert parse_metadata(["a=1", "b=x", "c=true", 'd="1"']) == {
        "a": 1,
        "b": "x",
        "c": True,
        "d": "1",
    }


def _rucio_answer(status: int, cls: str, msg: str = "m") -> httpx.Response:
    return httpx.Response(
        status,
        json={"ExceptionClass": cls, "ExceptionMessage": msg},
        headers={"ExceptionClass": cls},
    )


@pytest.mark.parametrize(
    ("status", "cls", "expected"),
    [
        (404, "DataIdentifierNotFound", DidNotFoundError),
        (404, "RSENotFound", RseNotFoundError),
        (409, "DataIdentifierAlreadyExists", ConflictError),
        (409, "FileConsistencyMismatch", ContentConflictError),
        (409, "InsufficientAccountLimit", QuotaError),
        (400, "InvalidRSEExpression", InvalidInputError),
        (401, "AccessDenied", RucioRefusedError),
        (503, "ServiceUnavailable", BackendUnavailableError),
        (500, "RucioException", Exception),
    ],
)
def test_rucio_errors_translated_once(status: int, cls: str, expected: type[Exception]) -> None:
    error = translate(_rucio_answer(status, cls), "op", field="rse_expression")
    assert isinstance(error, expected)
    if status == 500:
        assert error.status == 502
    if expected is InvalidInputError:
        assert error.errors == [
            {"loc": ["rse_expression"], "msg": "m", "type": "value_error.rucio"}
        ]


def test_rucio_auth_errors_depend_on_who_is_refused() -> None:
    answer = _rucio_answer(401, "CannotAuthenticate")
    assert isinstance(translate(answer, "op", user_token=True), InvalidTokenError)
    assert translate(answer, "op").status == 502  # the service's own login: our fault


async def test_client_maps_problems_to_our_errors() -> None:
    def problem(status: int, **extra: Any) -> httpx.Response:
        body = {"type": "https://vre.example.org/problems/x", "title": "t", "status": status}
        body.update({"detail": f"detail {status}", **extra})
        return httpx.Response(status, json=body, headers={"Retry-After": "7"})

    answers = {
        "/dids/s/a": problem(404),
        "/dids/s/b": problem(507, limit_bytes=10),
        "/dids/s/c": problem(
            403, type="https://vre.example.org/problems/quota-exceeded", limit_bytes=5
        ),
        "/dids/s/d": problem(503),
        "/dids/s/e": problem(422, errors=[{"loc": ["name"], "msg": "bad"}]),
    }
    transport = httpx.MockTransport(lambda request: answers[request.url.path])
    async with httpx.AsyncClient(transport=transport) as http:
        dl = DatalakeClient("http://datalake", "token", http=http)
        with pytest.raises(NotFoundError, match="detail 404"):
            await dl.get_did("s", "a")
        with pytest.raises(QuotaExceededError) as quota:
            await dl.get_did("s", "b")
        assert quota.value.extra["limit_bytes"] == 10
        with pytest.raises(QuotaRefusedError) as refused:
            await dl.get_did("s", "c")
        assert refused.value.status == 403
        with pytest.raises(BackendUnavailableError) as down:
            await dl.get_did("s", "d")
        assert down.value.headers["Retry-After"] == "7"
        with pytest.raises(InvalidInputError) as invalid:
            await dl.get_did("s", "e")
        assert invalid.value.errors == [{"loc": ["name"], "msg": "bad"}]


def test_openapi_documents_every_route() -> None:
    spec = create_app().openapi()  # builds without any configuration or network
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path not in ("/healthz", "/readyz")
    ]
    assert len(operations) >= 20
    for path, method, op in operations:
        assert op.get("summary"), (path, method)
        assert op.get("description"), (path, method)
        assert any(code.startswith("4") for code in op["responses"]), (path, method)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (path, method, code)
    schemas = spec["components"]["schemas"]
    for model in ("Did", "UploadedFile", "Rule", "Usage", "ResolveResult", "RuleCreate"):
        assert schemas[model].get("examples"), model
    upload = spec["paths"]["/files/{scope}/{name}"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]


async def test_hundred_thousand_dids_stream_in_flat_memory() -> None:
    """Rucio's NDJSON is parsed line by line and re-emitted in batches: memory stays flat."""
    import tracemalloc

    from vre_datalake.backends.base import Actor
    from vre_datalake.backends.rucio import RucioDatalakeBackend, RucioRest
    from vre_datalake.config import AccountSettings, RucioSettings
    from vre_datalake.handlers.streaming import ndjson_response

    count = 100_000

    async def lines() -> Any:
        for i in range(count):
            yield (
                f'{{"scope": "user.alice", "name": "run/{i:07d}.fits", "did_type": "FILE", '
                f'"bytes": {i}, "length": null}}\n'
            ).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/userpass":
            return httpx.Response(200, headers={"X-Rucio-Auth-Token": "t"})
        assert request.url.path == "/dids/user.alice/dids/search"
        return httpx.Response(
            200, headers={"Content-Type": "application/x-json-stream"}, content=lines()
        )

    settings = RucioSettings(url="http://rucio")
    rest = RucioRest(settings, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    backend = RucioDatalakeBackend(rest, settings=settings, accounts=AccountSettings())
    actor = Actor(account="alice", scope="user.alice", user_key="k")
    stream = backend.iter_dids(
        actor, "user.alice", name="*", did_type="all", filters=[], limit=None
    )
    response = ndjson_response(stream)
    tracemalloc.start()
    try:
        received = 0
        lines_out = 0
        async for chunk in response.body_iterator:
            assert isinstance(chunk, bytes)
            received += len(chunk)
            lines_out += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await rest.aclose()
    assert lines_out == count
    assert received > 10_000_000  # ≈ 13 MB of NDJSON went through …
    assert peak < 2_000_000, peak  # … with well under 2 MB allocated at any time


@pytest.mark.parametrize("ahead", [0, 1])
async def test_checksums_beside_the_write_match_one_pass_over_the_bytes(ahead: int) -> None:
    """Odd-sized pieces re-chunked, summed in threads while handed on (with chunks received
    ahead or not): the same bytes in the same order, and md5/adler32 of the whole."""
    import os
    import zlib

    from vre_datalake.services.uploads import checksummed

    data = os.urandom(3 * 1024 * 1024 + 12345)
    sizes = [1, 65536, 300_001, 7, 1 << 20]

    async def pieces() -> Any:
        at, turn = 0, 0
        while at < len(data):
            size = sizes[turn % len(sizes)]
            yield data[at : at + size]
            at, turn = at + size, turn + 1

    sums = Checksummer()
    out = [chunk async for chunk in checksummed(pieces(), sums, 1 << 20, ahead=ahead)]
    assert b"".join(out) == data
    assert all(len(chunk) >= 1 << 20 for chunk in out[:-1])
    assert sums.bytes == len(data)
    assert sums.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert sums.adler32 == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


async def test_sums_of_many_chunks_in_flight_come_out_in_order() -> None:
    """Chunks added without waiting, large and small mixed, a few still summing at a time:
    md5 and adler32 of the bytes in the order they were added."""
    import os
    import zlib

    chunks = [os.urandom(size) for size in (300_000, 5, 1 << 20, 70_000, 400_000, 1)]
    sums = Checksummer()
    for chunk in chunks:
        await sums.keep_up(2)
        sums.add(chunk)
    await sums.keep_up()
    data = b"".join(chunks)
    assert sums.bytes == len(data)
    assert sums.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert sums.adler32 == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


async def test_a_body_that_fails_midway_stops_its_sums_and_its_reading_ahead() -> None:
    """The client goes away after a few chunks: the error reaches the writer, the receiving
    task and the sums still in flight are stopped, and the body's stream is closed."""
    import os

    from vre_datalake.services.uploads import checksummed

    closed = []

    async def body() -> Any:
        try:
            for _ in range(3):
                yield os.urandom(1 << 20)
            raise UploadAbortedError("gone")
        finally:
            closed.append(True)

    sums = Checksummer()
    written: list[bytes] = []

    async def write() -> None:
        async with contextlib.aclosing(checksummed(body(), sums, 1 << 20, ahead=1)) as chunks:
            async for chunk in chunks:
                written.append(chunk)

    with pytest.raises(UploadAbortedError):
        await write()
    assert sum(map(len, written)) == 3 << 20  # the chunks before the failure, in order
    assert closed == [True]
    assert not sums._in_flight


async def test_read_ahead_pulls_while_the_consumer_works_and_stops_when_it_leaves() -> None:
    """The source is pulled ``depth`` items beyond what the consumer holds; its error comes
    after the items before it; a consumer that leaves early stops the pulling and closes
    the source."""
    from vre_datalake.streams import read_ahead, rechunked

    pulled: list[int] = []
    closed: list[bool] = []

    async def source(fail_at: int | None = None) -> Any:
        try:
            for i in range(10):
                if i == fail_at:
                    raise ValueError("broken at 5")
                pulled.append(i)
                yield i
        finally:
            closed.append(True)

    ahead = read_ahead(source(), 2)
    assert await anext(ahead) == 0
    for _ in range(20):  # let the task run while the consumer "works" on item 0
        await asyncio.sleep(0)
    assert pulled == [0, 1, 2, 3]  # 1 and 2 queued, 3 waiting for room
    await ahead.aclose()
    assert closed == [True]
    for _ in range(5):
        await asyncio.sleep(0)
    assert pulled == [0, 1, 2, 3]  # nothing pulled after the consumer left

    pulled.clear()
    got: list[int] = []

    async def consume() -> None:
        async for item in read_ahead(source(fail_at=5), 3):
            got.append(item)

    with pytest.raises(ValueError, match="broken at 5"):
        await consume()
    assert got == [0, 1, 2, 3, 4]
    assert closed == [True, True]

    async def pieces() -> Any:
        for piece in (b"ab", b"c", b"", b"defg", b"h"):
            yield piece

    assert [c async for c in rechunked(pieces(), 3)] == [b"abc", b"defg", b"h"]


def test_pfn_layout_is_learnt_from_rucios_answer() -> None:
    """The part before Rucio's lfn2pfn path is learnt once; a PFN no known algorithm explains
    means asking Rucio every time."""
    from vre_datalake.backends.rucio.rses import WriteTemplate, lfn2pfn_hash
    from vre_datalake.models import DidRef

    first = DidRef(scope="user.alice", name="run1/a.fits")
    prefix = "file://localhost/data/VRE-DISK-1/"
    learnt = WriteTemplate.learn(prefix + lfn2pfn_hash(first.scope, first.name), first)
    assert learnt.algorithm == "hash"
    other = DidRef(scope="proj.dm", name="b.txt")
    assert learnt.pfn(other) == prefix + lfn2pfn_hash(other.scope, other.name)
    assert learnt.pfn(other) != learnt.pfn(first)
    assert "/proj.dm/" in str(learnt.pfn(other))  # only user.* and group.* scopes are split
    assert "/user/alice/" in str(learnt.pfn(first))
    unexplained = WriteTemplate.learn(prefix + "custom/a.fits", first)
    assert unexplained.pfn(other) is None


async def test_a_posix_write_leaves_the_whole_file_or_nothing(tmp_path: Any) -> None:
    from vre_datalake.backends.rse.posix import PosixStore
    from vre_datalake.errors import StorageError

    store = PosixStore()

    async def chunks(*parts: bytes, fail: bool = False) -> Any:
        for part in parts:
            yield part
        if fail:
            raise BadRequestError("the client went away")

    await store.write(f"file://{tmp_path}/a/one.bin", chunks(b"abc", b"", b"defg"))
    assert (tmp_path / "a" / "one.bin").read_bytes() == b"abcdefg"
    await store.write(f"file://{tmp_path}/empty.bin", chunks())
    assert (tmp_path / "empty.bin").read_bytes() == b""

    with pytest.raises(BadRequestError):
        await store.write(f"file://{tmp_path}/cut.bin", chunks(b"abc", fail=True))
    assert not (tmp_path / "cut.bin").exists()

    # an existing file is refused and left as it was, not removed as a partial one
    with pytest.raises(StorageError, match="exists already"):
        await store.write(f"file://{tmp_path}/a/one.bin", chunks(b"other"))
    assert (tmp_path / "a" / "one.bin").read_bytes() == b"abcdefg"
