"""The shared client ``vre_common.clients.datalake`` against a served datalake app."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from services.datalake.tests.datalake_support import ServedApp
from vre_common.clients.datalake import DatalakeClient, Did, DidRef
from vre_common.errors import (
    BackendUnavailableError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from vre_common.testing import TestIssuer, free_port


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_client_round_trip(served: ServedApp, issuer: TestIssuer, uid: str) -> None:
    shared = DatalakeClient(served.url)
    try:
        dl = shared.with_token(issuer.token("alice"))
        data = os.urandom(700_000)
        md5 = hashlib.md5(data).hexdigest()
        up = await dl.upload(
            "user.alice", f"{uid}/a.bin", chunks(data), md5=md5, size=len(data), rse="VRE-DISK-1"
        )
        assert (up.bytes, up.md5, up.rse, up.created) == (len(data), md5, "VRE-DISK-1", True)

        ds = await dl.create_dataset("user.alice", f"{uid}-ds", metadata={"campaign": "cl"})
        assert isinstance(ds, Did)
        assert ds.type == "dataset"
        second = await dl.upload(
            "user.alice",
            f"{uid}/b.bin",
            b"second file",
            dataset=f"user.alice:{uid}-ds",
            metadata={"run_number": 7, "datatype": "raw"},
        )
        assert second.dataset == f"user.alice:{uid}-ds"
        await dl.attach("user.alice", f"{uid}-ds", [f"user.alice:{uid}/a.bin"])
        await dl.set_metadata("user.alice", f"{uid}/a.bin", {"version": "v1"})

        got = await dl.get_did("user.alice", f"{uid}/b.bin")
        assert got.metadata["run_number"] == 7
        assert (await dl.get_did("user.alice", f"{uid}/a.bin")).metadata["version"] == "v1"
        listed = [d.name async for d in dl.list_dids("user.alice", name=f"{uid}/*")]
        assert sorted(listed) == [f"{uid}/a.bin", f"{uid}/b.bin"]
        filtered = [
            d.name
            async for d in dl.list_dids("user.alice", name=f"{uid}/*", metadata={"run_number": 7})
        ]
        assert filtered == [f"{uid}/b.bin"]
        content = [d.name async for d in dl.list_content("user.alice", f"{uid}-ds")]
        assert sorted(content) == [f"{uid}/a.bin", f"{uid}/b.bin"]

        files = await dl.resolve([DidRef(scope="user.alice", name=f"{uid}-ds")])
        by_name = {f.name: f for f in files}
        assert by_name[f"{uid}/a.bin"].md5 == md5
        assert by_name[f"{uid}/a.bin"].replicas[0].path is not None

        async with dl.download("user.alice", f"{uid}/a.bin") as body:
            assert body.size == len(data)
            assert body.md5 == md5
            received = b"".join([chunk async for chunk in body.iter_bytes()])
        assert received == data
        async with dl.download("user.alice", f"{uid}/a.bin", offset=10, length=5) as part:
            assert part.status_code == 206
            assert b"".join([c async for c in part.iter_bytes()]) == data[10:15]

        await dl.detach("user.alice", f"{uid}-ds", [f"user.alice:{uid}/a.bin"])
        content = [d.name async for d in dl.list_content("user.alice", f"{uid}-ds")]
        assert content == [f"{uid}/b.bin"]
    finally:
        await shared.aclose()


async def test_client_raises_our_errors(served: ServedApp, issuer: TestIssuer, uid: str) -> None:
    async with DatalakeClient(served.url, issuer.token("alice")) as dl:
        with pytest.raises(NotFoundError):
            await dl.get_did("user.alice", f"{uid}/missing")
        with pytest.raises(InvalidInputError) as bad_md5:
            await dl.upload("user.alice", f"{uid}/x", chunks(b"abc"), md5="0" * 32)
        assert bad_md5.value.extra["received_md5"] == hashlib.md5(b"abc").hexdigest()
        with pytest.raises(NotFoundError):
            await dl.get_did("user.alice", f"{uid}/x")  # nothing was registered
        await dl.upload("user.alice", f"{uid}/y", b"one")
        with pytest.raises(ConflictError):
            await dl.upload("user.alice", f"{uid}/y", b"two")
        async with DatalakeClient(served.url, issuer.token("bob")) as bob:
            with pytest.raises(ForbiddenError):
                await bob.get_did("user.alice", f"{uid}/y")
        with pytest.raises(InvalidInputError):
            await dl.resolve(["no-colon"])
    async with DatalakeClient(f"http://127.0.0.1:{free_port()}", "t") as down:
        with pytest.raises(BackendUnavailableError):
            await down.get_did("user.alice", "x")
        with pytest.raises(BackendUnavailableError):
            async with down.download("user.alice", "x"):
                pass
