"""Memory stays flat: files pass through the zenodo service in chunks, never whole."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from services.zenodo.tests.conftest import ALICE_TOKEN, AppClient
from services.zenodo.tests.support.standin import ZenodoStandIn
from services.zenodo.tests.test_zenodo_e2e import META, SCOPE, wait_for
from vre_common.testing import TestIssuer

SIZE = 64 * 1024 * 1024
# Python allocations of every part in this process (the zenodo app, the datalake service,
# the stand-in) while 64 MiB go through twice; measured ≈ 9-11 MB.
LIMIT = 32 * 1024 * 1024


@pytest.mark.slow
async def test_import_and_publish_stream_in_flat_memory(
    zenodo_app: AppClient,
    fresh_standin: ZenodoStandIn,
    datalake_url: str,
    issuer: TestIssuer,
    uid: str,
) -> None:
    rid = fresh_standin.add_record({"big.bin": os.urandom(SIZE)}, title=f"Big {uid}")
    alice = issuer.headers("alice")
    async with zenodo_app(datalake_url) as client:
        await client.put("/credentials", json={"token": ALICE_TOKEN}, headers=alice)
        tracemalloc.start()
        try:
            started = await client.post(
                "/imports", json={"record_id": rid, "scope": SCOPE}, headers=alice
            )
            job = await wait_for(
                client, started.headers["Location"], alice, {"completed", "failed"}, within=240
            )
            assert job["state"] == "completed", job
            imported_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            created = await client.post(
                "/depositions",
                json={"dids": [f"{SCOPE}:zenodo-{rid}/big.bin"], "metadata": META},
                headers=alice,
            )
            dep = await wait_for(
                client, created.headers["Location"], alice, {"ready", "incomplete"}, within=240
            )
            assert dep["state"] == "ready", dep
            published_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert imported_peak < LIMIT, imported_peak
        assert published_peak < LIMIT, published_peak
        bucket = fresh_standin.bucket_of(dep["zenodo_id"])
        assert bucket["big.bin"].size == SIZE
