"""GET /runs/{id}/record: the run record a publication carries (issue 21)."""

from __future__ import annotations

import hashlib
import zlib

from services.workflows.tests.support.helpers import Harness, serial_spec, step
from vre_common.run_record import RunRecord


async def test_record_carries_spec_code_inputs_outputs_with_checksums(wf: Harness) -> None:
    data = b"3\n1\n2\n"
    wf.datalake.add_file("user.alice", "inputs/numbers.csv", data)
    spec = serial_spec(
        [
            step("sort", "sort -n numbers.csv > sorted.csv"),
            step(
                "sum",
                "bash code/sum.sh ${factor} > total.txt",
                image="docker.io/library/debian@sha256:" + "ab" * 32,
            ),
        ],
        parameters={"factor": 1},
        outputs=["sorted.csv", "total.txt"],
    )
    code = "awk -v f=$1 '{s+=$1} END {print s * f}' sorted.csv\n"
    run = await wf.submit(
        spec=spec,
        parameters={"factor": 10},
        inputs=[{"did": "user.alice:inputs/numbers.csv"}],
        files={"code/sum.sh": code},
        output={"scope": "user.alice"},
    )
    done = await wf.wait(run["id"])
    assert done["status"] == "finished", done

    answer = await wf.client.get(f"/runs/{run['id']}/record", headers=wf.headers())
    assert answer.status_code == 200, answer.text
    record = RunRecord.model_validate(answer.json())
    assert (record.kind, record.schema_version) == ("vre-run-record", 1)
    assert record.vre_version
    assert record.spec_sha256 == done["spec_sha256"]
    assert record.spec_intact()  # the record's rule is the workflows service's
    assert record.spec["workflow"]["specification"]["steps"][1]["name"] == "sum"
    assert record.parameters == {"factor": 10}
    assert record.files == {"code/sum.sh": code}
    images = {i.name: i.digest for i in record.images}
    assert images["docker.io/library/debian@sha256:" + "ab" * 32] == "sha256:" + "ab" * 32
    assert images["docker.io/library/debian:bookworm-slim"] is None
    by_path = {i.path: i for i in record.inputs}
    staged = by_path["numbers.csv"]
    assert (staged.kind, staged.did, staged.bytes) == ("did", "user.alice:inputs/numbers.csv", 6)
    assert staged.md5 == hashlib.md5(data).hexdigest()
    assert staged.adler32 == f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"
    assert by_path["code/sum.sh"].kind == "inline"
    outputs = {o.path: o for o in record.outputs}
    assert set(outputs) == {"sorted.csv", "total.txt"}
    assert outputs["total.txt"].md5 == hashlib.md5(b"60\n").hexdigest()
    assert str(outputs["total.txt"].did).startswith("user.alice:")
    # the same run gives the same bytes (the published file's md5 is stable)
    again = await wf.client.get(f"/runs/{run['id']}/record", headers=wf.headers())
    assert RunRecord.model_validate(again.json()).to_bytes() == record.to_bytes()

    hidden = await wf.client.get(f"/runs/{run['id']}/record", headers=wf.headers("bob"))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
