"""The official rucio-clients as an independent witness of what the service did, and back."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx

from services.datalake.tests.datalake_support import run_rucio_client
from vre_common.testing import TestIssuer

LIST_AND_DOWNLOAD = """
from rucio.client import Client
from rucio.client.downloadclient import DownloadClient
client = Client()
scope, name, folder = params["scope"], params["name"], params["folder"]
listed = list(client.list_dids(scope, {"name": params["pattern"]}, did_type="file"))
meta = client.get_did(scope, name)
replicas = list(client.list_replicas([{"scope": scope, "name": name}]))
DownloadClient(client=client).download_dids([{"did": f"{scope}:{name}", "base_dir": folder}])
print(json.dumps({"listed": listed, "md5": meta.get("md5"), "adler32": meta.get("adler32"),
                  "bytes": meta.get("bytes"), "rses": sorted(replicas[0]["rses"])}))
"""

UPLOAD = """
from rucio.client.uploadclient import UploadClient
UploadClient().upload([{"path": params["path"], "rse": params["rse"],
                        "did_scope": params["scope"], "did_name": params["name"]}])
print(json.dumps({"ok": True}))
"""


async def test_uploaded_through_service_seen_by_rucio_clients(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    uid: str,
    rucio_client_config: Path,
    tmp_path: Path,
) -> None:
    body = os.urandom(300_000)
    put = await client.put(
        f"/files/user.alice/{uid}/witness.bin", content=body, headers=issuer.headers()
    )
    assert put.status_code == 201, put.text
    # rucio-clients does not create the folders of a name with '/' (it fails with ENOENT)
    (tmp_path / "user.alice" / uid).mkdir(parents=True)
    seen = run_rucio_client(
        rucio_client_config,
        LIST_AND_DOWNLOAD,
        scope="user.alice",
        name=f"{uid}/witness.bin",
        pattern=f"{uid}/*",
        folder=str(tmp_path),
    )
    assert seen["listed"] == [f"{uid}/witness.bin"]
    assert seen["md5"] == hashlib.md5(body).hexdigest() == put.json()["md5"]
    assert seen["adler32"] == put.json()["adler32"]
    assert seen["bytes"] == len(body)
    assert seen["rses"] == ["VRE-DISK-1"]
    downloaded = tmp_path / "user.alice" / uid / "witness.bin"
    assert downloaded.read_bytes() == body


async def test_uploaded_by_rucio_clients_downloaded_through_service(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    uid: str,
    rucio_client_config: Path,
    tmp_path: Path,
) -> None:
    await client.get("/scopes/mine", headers=issuer.headers())  # alice and her scope exist
    source = tmp_path / "from-client.bin"
    body = os.urandom(200_000)
    source.write_bytes(body)
    run_rucio_client(
        rucio_client_config,
        UPLOAD,
        path=str(source),
        rse="VRE-DISK-2",
        scope="user.alice",
        name=f"{uid}-client.bin",
    )
    got = await client.get(f"/files/user.alice/{uid}-client.bin", headers=issuer.headers())
    assert got.status_code == 200, got.text
    assert got.content == body
    assert got.headers["x-replica-rse"] == "VRE-DISK-2"
    assert got.headers["x-checksum-md5"] == hashlib.md5(body).hexdigest()
