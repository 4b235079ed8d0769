"""ZenodoBackend against the Zenodo stand-in: every operation, both new-version shapes,
page caps, token problems, not-found, validation errors, and transport failures."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from services.zenodo.tests.conftest import ALICE_TOKEN, BOB_TOKEN
from services.zenodo.tests.support.standin import ZenodoStandIn, stream_bytes
from vre_common.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
    RateLimitedError,
)
from vre_zenodo.backends.base import RecordQuery, ZenodoFile
from vre_zenodo.backends.zenodo import ZenodoBackend, escape_query
from vre_zenodo.config import ZenodoApiSettings
from vre_zenodo.errors import (
    ChecksumMismatchError,
    DepositionNotFoundError,
    RecordNotFoundError,
    ZenodoForbiddenError,
    ZenodoTokenMissingError,
    ZenodoTokenRejectedError,
    ZenodoValidationError,
)

METADATA = {
    "upload_type": "dataset",
    "title": "Backend test",
    "description": "A deposition made by the backend test.",
    "creators": [{"name": "Doe, Jane", "affiliation": "INFN"}],
    "license": "cc-by-4.0",
}


async def _published(backend: ZenodoBackend, content: bytes = b"hello zenodo\n") -> int:
    dep = await backend.create_deposition(ALICE_TOKEN, METADATA)
    assert dep.bucket_url
    await backend.upload_file(
        ALICE_TOKEN, dep.bucket_url, "a.txt", stream_bytes(content), size=len(content)
    )
    return (await backend.publish(ALICE_TOKEN, dep.id)).id


async def test_deposition_lifecycle(backend: ZenodoBackend, standin: ZenodoStandIn) -> None:
    dep = await backend.create_deposition(ALICE_TOKEN)
    assert dep.state == "unsubmitted"
    assert not dep.submitted
    assert dep.doi is None
    assert dep.bucket_url
    assert dep.bucket_url.startswith(standin.base_url + "/api/files/")
    updated = await backend.update_metadata(ALICE_TOKEN, dep.id, METADATA)
    assert updated.title == "Backend test"
    assert updated.metadata["creators"] == METADATA["creators"]

    content = os.urandom(300_000)
    stored = await backend.upload_file(
        ALICE_TOKEN, dep.bucket_url, "data file.bin", stream_bytes(content), size=len(content)
    )
    assert stored.key == "data file.bin"
    assert stored.size == len(content)
    assert stored.md5 == hashlib.md5(content).hexdigest()
    again = await backend.get_deposition(ALICE_TOKEN, dep.id)
    assert [(f.key, f.size, f.md5) for f in again.files] == [
        ("data file.bin", len(content), stored.md5)
    ]
    listed = await backend.list_depositions(ALICE_TOKEN, size=100)
    assert dep.id in {d.id for d in listed}

    published = await backend.publish(ALICE_TOKEN, dep.id)
    assert published.submitted
    assert published.state == "done"
    assert published.doi == f"10.5281/zenodo.{dep.id}"
    assert published.record_id == dep.id
    record = await backend.get_record(dep.id)
    assert record.doi == published.doi
    assert record.title == "Backend test"
    assert record.license == "cc-by-4.0"
    assert record.resource_type == "dataset"
    assert [(f.key, f.size, f.md5) for f in record.files] == [
        ("data file.bin", len(content), stored.md5)
    ]
    assert record.files[0].url == (
        f"{standin.base_url}/api/records/{dep.id}/files/data file.bin/content"
    )


async def test_delete_file_and_draft(backend: ZenodoBackend) -> None:
    dep = await backend.create_deposition(ALICE_TOKEN, METADATA)
    assert dep.bucket_url
    await backend.upload_file(ALICE_TOKEN, dep.bucket_url, "x", stream_bytes(b"x"), size=1)
    await backend.delete_file(ALICE_TOKEN, dep.bucket_url, "x")
    await backend.delete_file(ALICE_TOKEN, dep.bucket_url, "x")  # already gone: fine
    assert (await backend.get_deposition(ALICE_TOKEN, dep.id)).files == []
    await backend.delete_deposition(ALICE_TOKEN, dep.id)
    with pytest.raises(DepositionNotFoundError):
        await backend.get_deposition(ALICE_TOKEN, dep.id)


async def test_published_deposition_cannot_be_deleted(backend: ZenodoBackend) -> None:
    dep_id = await _published(backend)
    with pytest.raises(ZenodoForbiddenError):
        await backend.delete_deposition(ALICE_TOKEN, dep_id)


@pytest.mark.parametrize("shape", ["new", "old"])
async def test_new_version_both_answer_shapes(
    backend: ZenodoBackend, fresh_standin: ZenodoStandIn, shape: str
) -> None:
    fresh_standin.newversion_shape = shape  # type: ignore[assignment]
    first = await _published(backend)
    draft = await backend.new_version(ALICE_TOKEN, first)
    assert draft.id != first
    assert not draft.submitted
    assert draft.state == "unsubmitted"
    assert [f.key for f in draft.files] == ["a.txt"]  # previous files already in the draft
    assert draft.bucket_url
    assert draft.bucket_url != (await backend.get_deposition(ALICE_TOKEN, first)).bucket_url
    # a second call answers the same draft
    assert (await backend.new_version(ALICE_TOKEN, first)).id == draft.id
    await backend.update_metadata(ALICE_TOKEN, draft.id, {**METADATA, "version": "2"})
    second = await backend.publish(ALICE_TOKEN, draft.id)
    assert second.doi == f"10.5281/zenodo.{draft.id}"
    assert (
        second.concept_record_id
        == (await backend.get_deposition(ALICE_TOKEN, first)).concept_record_id
    )


async def test_edit_and_discard(backend: ZenodoBackend) -> None:
    dep_id = await _published(backend)
    with pytest.raises(ZenodoValidationError):  # published: edit first
        await backend.update_metadata(ALICE_TOKEN, dep_id, {**METADATA, "title": "New"})
    editing = await backend.edit(ALICE_TOKEN, dep_id)
    assert editing.state == "inprogress"
    await backend.update_metadata(ALICE_TOKEN, dep_id, {**METADATA, "title": "Changed"})
    discarded = await backend.discard(ALICE_TOKEN, dep_id)
    assert discarded.state == "done"
    assert discarded.title == "Backend test"
    await backend.edit(ALICE_TOKEN, dep_id)
    await backend.update_metadata(ALICE_TOKEN, dep_id, {**METADATA, "title": "Changed"})
    await backend.publish(ALICE_TOKEN, dep_id)
    assert (await backend.get_record(dep_id)).title == "Changed"


async def test_validation_errors_become_field_errors(backend: ZenodoBackend) -> None:
    dep = await backend.create_deposition(ALICE_TOKEN)
    with pytest.raises(ZenodoValidationError) as bad_put:
        await backend.update_metadata(
            ALICE_TOKEN, dep.id, {"upload_type": "novel", "creators": [{"affiliation": "x"}]}
        )
    assert bad_put.value.status == 422
    assert {tuple(e["loc"]) for e in bad_put.value.errors or []} == {
        ("metadata", "upload_type"),
        ("metadata", "creators", 0, "name"),
    }
    with pytest.raises(ZenodoValidationError) as bad_publish:
        await backend.publish(ALICE_TOKEN, dep.id)
    locs = {tuple(e["loc"]) for e in bad_publish.value.errors or []}
    assert locs == {
        ("metadata", "upload_type"),
        ("metadata", "title"),
        ("metadata", "description"),
        ("metadata", "creators"),
        ("files",),
    }
    assert "Minimum one file must be provided." in bad_publish.value.detail


async def test_bad_token_missing_token_and_others_depositions(backend: ZenodoBackend) -> None:
    with pytest.raises(ZenodoTokenRejectedError) as rejected:
        await backend.create_deposition("not-a-token")
    assert rejected.value.status == 403
    assert "PUT /zenodo/credentials" in rejected.value.detail
    with pytest.raises(ZenodoTokenRejectedError):  # also on public endpoints
        await backend.search_records(RecordQuery(q="x"), token="not-a-token")
    dep = await backend.create_deposition(ALICE_TOKEN)
    with pytest.raises(ZenodoForbiddenError):
        await backend.get_deposition(BOB_TOKEN, dep.id)
    missing = ZenodoBackend(ZenodoApiSettings(url=backend.base_url))
    try:
        with pytest.raises(ZenodoTokenMissingError):
            await missing._call(
                "GET", f"{backend.base_url}/api/deposit/depositions", "list_depositions", None
            )
    finally:
        await missing.aclose()


async def test_not_found(backend: ZenodoBackend) -> None:
    with pytest.raises(DepositionNotFoundError):
        await backend.get_deposition(ALICE_TOKEN, 999)
    with pytest.raises(RecordNotFoundError) as missing:
        await backend.get_record(999)
    assert missing.value.status == 404


async def test_search_page_caps_and_paging(
    backend: ZenodoBackend, standin: ZenodoStandIn, uid: str
) -> None:
    keyword = f"cap{uid}"
    for i in range(30):
        standin.add_record({"f.txt": b"x"}, title=f"Cap record {i}", keywords=[keyword])
    standin.requests.clear()
    anonymous = await backend.search_records(RecordQuery(q=keyword, size=100))
    assert anonymous.size == 25
    assert len(anonymous.hits) == 25
    assert anonymous.total == 30
    assert anonymous.has_next
    authenticated = await backend.search_records(RecordQuery(q=keyword, size=500), ALICE_TOKEN)
    assert authenticated.size == 100
    assert len(authenticated.hits) == 30
    assert not authenticated.has_next
    sizes = [size for method, path, size in standin.requests if path == "/api/records"]
    assert sizes == [25, 100]
    everything = [r async for r in backend.iter_records(RecordQuery(q=keyword))]
    assert len({r.id for r in everything}) == 30
    assert backend.page_size_cap(None) == 25
    assert backend.page_size_cap(ALICE_TOKEN) == 100


async def test_search_filters_and_slash_escaping(
    backend: ZenodoBackend, standin: ZenodoStandIn, uid: str
) -> None:
    tag = f"filt{uid}"
    software = standin.add_record(
        {"s.py": b"print()"}, keywords=[tag], upload_type="software", communities=["escape2020"]
    )
    standin.add_record({"d.csv": b"1,2"}, keywords=[tag], upload_type="dataset")
    hits = await backend.search_records(
        RecordQuery(q=tag, communities=["escape2020"], type="software")
    )
    assert [r.id for r in hits.hits] == [software]
    assert hits.hits[0].communities == ["escape2020"]
    by_doi = await backend.search_records(RecordQuery(q=f'doi:"10.5281/zenodo.{software}"'))
    assert [r.id for r in by_doi.hits] == [software]
    assert escape_query("a/b\\/c") == "a\\/b\\/c"


async def test_download_verifies_md5(backend: ZenodoBackend, fresh_standin: ZenodoStandIn) -> None:
    content = os.urandom(200_000)
    rid = fresh_standin.add_record({"good.bin": content, "bad.bin": content})
    record = await backend.get_record(rid)
    files = {f.key: f for f in record.files}
    async with backend.download(files["good.bin"]) as stream:
        received = b"".join([chunk async for chunk in stream.iter_bytes()])
    assert received == content
    fresh_standin.corrupt(rid, "bad.bin")

    async def read(file: ZenodoFile) -> bytes:
        async with backend.download(file) as stream:
            return b"".join([chunk async for chunk in stream.iter_bytes()])

    with pytest.raises(ChecksumMismatchError):
        await read(files["bad.bin"])
    missing = ZenodoFile(
        key="nope", size=1, url=f"{backend.base_url}/api/records/{rid}/files/nope/content"
    )
    with pytest.raises(RecordNotFoundError):
        await read(missing)


async def test_hundred_file_limit(backend: ZenodoBackend) -> None:
    dep = await backend.create_deposition(ALICE_TOKEN, METADATA)
    assert dep.bucket_url
    for i in range(100):
        await backend.upload_file(ALICE_TOKEN, dep.bucket_url, f"f{i}", stream_bytes(b"."), size=1)
    with pytest.raises(ZenodoValidationError) as refused:
        await backend.upload_file(ALICE_TOKEN, dep.bucket_url, "f100", stream_bytes(b"."), size=1)
    assert "at most 100" in refused.value.detail


async def test_token_never_leaves_zenodo(backend: ZenodoBackend) -> None:
    with pytest.raises(BadGatewayError):
        await backend.upload_file(
            ALICE_TOKEN, "http://elsewhere.invalid/api/files/x", "f", stream_bytes(b"."), size=1
        )
    assert "Authorization" not in backend._headers(ALICE_TOKEN, "http://elsewhere.invalid/x")


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [
        (httpx.ReadTimeout("slow"), BackendTimeoutError, 504),
        (httpx.ConnectError("refused"), BackendUnavailableError, 503),
        (httpx.Response(500, json={"status": 500, "message": "boom"}), BadGatewayError, 502),
        (httpx.Response(503, headers={"Retry-After": "7"}), BackendUnavailableError, 503),
        (httpx.Response(504), BackendTimeoutError, 504),
        (httpx.Response(429, headers={"Retry-After": "9"}), RateLimitedError, 429),
    ],
)
async def test_upstream_failures(answer: object, error: type[Exception], status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    backend = ZenodoBackend(ZenodoApiSettings(url="https://zenodo.example"), http=http)
    try:
        with pytest.raises(error) as raised:
            await backend.get_record(1)
        assert raised.value.status == status  # type: ignore[attr-defined]
        if isinstance(answer, httpx.Response) and "Retry-After" in answer.headers:
            assert raised.value.headers["Retry-After"] == answer.headers["Retry-After"]  # type: ignore[attr-defined]
    finally:
        await http.aclose()
