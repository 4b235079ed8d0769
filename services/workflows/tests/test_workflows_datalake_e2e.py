"""End to end with the real Data Lake: the datalake service (served) on a real Rucio server.

alice uploads an input, runs a two-step serial workflow that reads it by DID, and finds the
outputs as DIDs in her scope with Rucio's checksums and the run's provenance metadata.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.datalake.tests.datalake_support import ServedApp, serve
from services.workflows.tests.conftest import SettingsFactory
from services.workflows.tests.support.datalake import PosixDatalake
from services.workflows.tests.support.helpers import Harness, serial_spec, step
from vre_common.clients.datalake import DatalakeClient
from vre_common.testing import TestIssuer, app_client
from vre_workflows.config import DatalakeClientSettings
from vre_workflows.main import create_app

pytestmark = pytest.mark.rucio


@pytest.fixture(scope="module")
def served_datalake(
    rucio_server: Any, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    params = {
        "rucio_url": rucio_server.url,
        "username": rucio_server.admin_username,
        "password": rucio_server.admin_password,
        "issuer": issuer.issuer,
        "audience": issuer.audience,
    }
    app = serve(params, issuer, tmp_path_factory.mktemp("datalake") / "server.log")
    yield app
    app.stop()


async def test_did_in_registered_dids_out(
    served_datalake: ServedApp,
    make_settings: SettingsFactory,
    issuer: TestIssuer,
    tmp_path: Path,
) -> None:
    uid = uuid.uuid4().hex[:8]
    data = b"".join(f"{n}\n".encode() for n in (5, 3, 9, 1))
    async with DatalakeClient(served_datalake.url) as shared:
        lake = shared.with_token(issuer.token("alice"))
        uploaded = await lake.upload("user.alice", f"{uid}/numbers.csv", data, rse="VRE-DISK-1")

        settings = make_settings(datalake=DatalakeClientSettings(url=served_datalake.url))
        app = create_app(settings, validator=issuer.validator())
        async with app_client(app) as client:
            wf = Harness(app=app, client=client, issuer=issuer, datalake=PosixDatalake(tmp_path))
            spec = serial_spec(
                [
                    step("sort", "sort -n numbers.csv > sorted.csv"),
                    step(
                        "sum",
                        "mkdir -p results && awk '{s+=$$1} END {print s}' sorted.csv"
                        " > results/sum.txt",
                    ),
                ],
                outputs=["sorted.csv", "results/sum.txt"],
            )
            run = await wf.submit(
                spec=spec,
                inputs=[{"did": f"user.alice:{uid}/numbers.csv"}],
                output={"scope": "user.alice", "rse_expression": "VRE-DISK-1"},
                name=f"e2e-{uid}",
            )
            done = await wf.wait(run["id"], within=120)
            assert done["status"] == "finished", done["error"]["detail"]
            (staged,) = done["inputs"]
            assert staged["did"] == f"user.alice:{uid}/numbers.csv"
            assert staged["staged_by"] in ("link", "copy")  # a POSIX replica on this machine
            assert staged["md5"] == uploaded.md5

        outputs = {o["path"]: o for o in done["outputs"]}
        dataset_scope, _, dataset_name = done["output_dataset"].partition(":")
        dataset = await lake.get_did(dataset_scope, dataset_name)
        assert dataset.type == "dataset"
        content = sorted(
            [f"{d.scope}:{d.name}" async for d in lake.list_content(dataset_scope, dataset_name)]
        )
        assert content == sorted([done["provenance_did"], *(o["did"] for o in outputs.values())])
        p_scope, _, p_name = done["provenance_did"].partition(":")
        async with lake.download(p_scope, p_name) as body:
            manifest = json.loads(b"".join([chunk async for chunk in body.iter_bytes()]))
        assert manifest["run_id"] == run["id"]
        assert manifest["spec_sha256"] == run["spec_sha256"]
        assert manifest["inputs"][0]["did"] == f"user.alice:{uid}/numbers.csv"
        assert manifest["images"] == ["docker.io/library/debian:bookworm-slim"]
        if dataset.metadata.get("run_id") is None:
            # Rucio on SQLite has no JSON metadata plugin: the run says so.
            assert any("provenance metadata" in w for w in done["warnings"])
        else:
            assert dataset.metadata["spec_sha256"] == run["spec_sha256"]
            assert dataset.metadata["input_dids"] == f"user.alice:{uid}/numbers.csv"
        total = outputs["results/sum.txt"]
        scope, _, name = total["did"].partition(":")
        async with lake.download(scope, name) as body:
            received = b"".join([chunk async for chunk in body.iter_bytes()])
            assert (body.md5, body.adler32) == (total["md5"], total["adler32"])
        assert received == b"18\n"
