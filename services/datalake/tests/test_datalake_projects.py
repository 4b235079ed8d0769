"""Science Projects in the Data Lake, through the embedded gateway (real Rucio, real SQLite).

The gateway mounts the datalake and the catalogue in-process: creating a project creates its
Rucio scope (in-process provisioner), members reach the scope through the shared policy (one
role by a group binding), outsiders get 404 (private) or 403 (public), and uploads and
attachments land in the gateway's provenance graph — also after a crash between the upload and
the event's delivery.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.datalake.tests.conftest import settings_params
from services.datalake.tests.datalake_support import make_settings
from services.gateway.tests.gateway_support import documented_permissions
from vre_catalogue.config import CatalogueSettings
from vre_catalogue.main import create_app as create_catalogue
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id
from vre_common.provenance.outbox import PENDING, READY, FileOutbox
from vre_common.testing import ServerThread, TestIssuer, app_client, free_port
from vre_datalake.config import DatalakeSettings, ProvenanceSettings
from vre_datalake.main import create_app as create_datalake
from vre_datalake.services.provenance import ProvenanceRecorder
from vre_gateway.config import GatewaySettings
from vre_gateway.factory import Factory
from vre_gateway.main import create_app as create_gateway
from vre_rucio_local import LocalRucio

QUOTA = 3 * 1024**3
TABLE = documented_permissions()
# who holds which role in the private project (alice owns both projects; bob is a member
# through the group binding /vre/beta; carol is in neither)
ROLE_OF = {"alice": "owner", "mia": "maintainer", "bob": "member", "vic": "viewer"}


@dataclass
class Vre:
    """A running embedded VRE: the gateway, its mounted datalake, and the test's projects."""

    http: httpx.AsyncClient
    gateway: FastAPI
    datalake: FastAPI
    issuer: TestIssuer
    private: str  # slugs
    public: str

    def h(self, user: str) -> dict[str, str]:
        return self.issuer.headers(user)

    @staticmethod
    def scope(slug: str) -> str:
        return f"proj.{slug}"

    async def deliver(self) -> None:
        """One relay pass now (the background relay would do it within its interval)."""
        recorder = self.datalake.state.factory.provenance
        assert recorder.relay is not None
        await recorder.marked()
        await recorder.relay.run_once()


def embedded(
    folder: Path,
    dl_settings: DatalakeSettings,
    issuer: TestIssuer,
    *,
    pending_grace: float = 60.0,
) -> tuple[FastAPI, FastAPI]:
    """A gateway (SQLite in ``folder``) with the datalake and the catalogue mounted."""
    settings = GatewaySettings.model_validate(
        {
            "mode": "embedded",
            "data": folder,
            "auth": issuer.auth_settings(),
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'gateway.db'}"},
            "rate_limit": {"enabled": False},
            "search": {"sources": ["projects"]},
            "projects": {"scope_quota_bytes": QUOTA},
        }
    )
    factory = Factory(settings, validator=issuer.validator())
    datalake = create_datalake(
        dl_settings.model_copy(
            update={
                "provenance": dl_settings.provenance.model_copy(
                    update={
                        "outbox_path": folder / "datalake-outbox.sqlite",
                        "relay_interval_seconds": 0.2,
                        "pending_grace_seconds": pending_grace,
                    }
                )
            }
        ),
        link=factory.link,
    )
    catalogue = create_catalogue(
        CatalogueSettings(
            auth=issuer.auth_settings(),
            database={"url": f"sqlite+aiosqlite:///{folder / 'catalogue.db'}"},
        ),
        link=factory.link,
    )
    gateway = create_gateway(
        settings, factory=factory, service_apps={"datalake": datalake, "catalogue": catalogue}
    )
    return gateway, datalake


async def _created(http: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> None:
    r = await http.post("/projects", json=body, headers=headers)
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
async def vre(
    rucio_server: LocalRucio, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Vre]:
    folder = tmp_path_factory.mktemp("vre-projects")
    gateway, datalake = embedded(
        folder, make_settings(**settings_params(rucio_server, issuer)), issuer
    )
    uid = uuid.uuid4().hex[:8]
    async with app_client(gateway, timeout=60) as http:
        vre = Vre(http, gateway, datalake, issuer, private=f"p{uid}", public=f"q{uid}")
        alice = vre.h("alice")
        await _created(http, alice, name="Private", slug=vre.private)
        await _created(http, alice, name="Public", slug=vre.public, visibility="public")
        r = await http.post(
            f"/projects/{vre.private}/groups",
            json={"group": "/vre/beta", "role": "member"},
            headers=alice,
        )
        assert r.status_code == 200, r.text
        for user in ("mia", "vic"):
            r = await http.post(
                f"/projects/{vre.private}/members",
                json={"subject": issuer.subject(user), "role": ROLE_OF[user]},
                headers=alice,
            )
            assert r.status_code == 201, r.text
        yield vre


async def _upload(vre: Vre, user: str, scope: str, name: str, body: bytes) -> httpx.Response:
    return await vre.http.put(f"/datalake/files/{scope}/{name}", content=body, headers=vre.h(user))


# ----------------------------------------------------------------------------- scopes


async def test_creating_a_project_creates_its_rucio_scope(
    vre: Vre, rucio_server: LocalRucio, rucio_admin_token: str
) -> None:
    scope, account = vre.scope(vre.private), f"proj-{vre.private}"
    rucio = {"X-Rucio-Auth-Token": rucio_admin_token}
    async with httpx.AsyncClient(base_url=rucio_server.url, headers=rucio, timeout=30) as http:
        scopes = await http.get(f"/accounts/{account}/scopes/")
        assert scopes.status_code == 200, scopes.text
        assert scope in scopes.json()
        info = (await http.get(f"/accounts/{account}")).json()
        assert info["account_type"] == "GROUP"
        limits = (await http.get(f"/accounts/{account}/limits/local")).json()
        assert limits
        assert set(limits.values()) == {QUOTA}

    listed = (await vre.http.get("/datalake/scopes", headers=vre.h("bob"))).json()
    mine = {s["name"]: s for s in listed}
    assert mine[scope] == {"name": scope, "account": account, "mine": True, "project": vre.private}
    assert mine[vre.scope(vre.public)]["mine"] is False  # public: bob may read, not write
    carol = {
        s["name"] for s in (await vre.http.get("/datalake/scopes", headers=vre.h("carol"))).json()
    }
    assert scope not in carol  # a private project's scope is not even listed
    assert vre.scope(vre.public) in carol


async def test_only_trusted_callers_create_scopes(vre: Vre) -> None:
    body = {"scope": "proj.x" + uuid.uuid4().hex[:6], "quota_bytes": 10}
    body["project"] = body["scope"].removeprefix("proj.")
    refused = await vre.http.post("/datalake/scopes", json=body, headers=vre.h("alice"))
    assert refused.status_code == 403, refused.text
    taken = {"scope": vre.scope(vre.private), "project": vre.private}
    exists = await vre.http.post("/datalake/scopes", json=taken, headers=vre.h("admin"))
    assert exists.status_code == 409, exists.text
    other = {"scope": "user.zzz", "project": "zzz"}
    invalid = await vre.http.post("/datalake/scopes", json=other, headers=vre.h("admin"))
    assert invalid.status_code == 422, invalid.text


# ----------------------------------------------------------------------------- members' data


async def test_group_member_uploads_and_the_project_account_holds_it(
    vre: Vre, rucio_server: LocalRucio, rucio_admin_token: str
) -> None:
    scope = vre.scope(vre.private)
    put = await _upload(vre, "bob", scope, "inputs/events.root", b"bob's events")
    assert put.status_code == 201, put.text
    read = await vre.http.get(f"/datalake/files/{scope}/inputs/events.root", headers=vre.h("vic"))
    assert read.status_code == 200
    assert read.content == b"bob's events"
    rucio = {"X-Rucio-Auth-Token": rucio_admin_token}
    async with httpx.AsyncClient(base_url=rucio_server.url, headers=rucio, timeout=30) as http:
        rules = await http.get(f"/accounts/proj-{vre.private}/rules")
    held = [json.loads(line) for line in rules.text.splitlines() if "inputs/events.root" in line]
    assert held, "the upload's rule belongs to the project's account (the project's quota)"
    rule = f"/datalake/rules/{held[0]['id']}"
    assert (await vre.http.get(rule, headers=vre.h("vic"))).status_code == 200
    assert (await vre.http.get(rule, headers=vre.h("carol"))).status_code == 404
    assert (await vre.http.delete(rule, headers=vre.h("bob"))).status_code == 403
    assert (await vre.http.delete(rule, headers=vre.h("mia"))).status_code == 204
    usage = await vre.http.get("/datalake/usage", params={"scope": scope}, headers=vre.h("vic"))
    assert usage.status_code == 200, usage.text
    assert usage.json()["account"] == f"proj-{vre.private}"
    assert {u["limit_bytes"] for u in usage.json()["rses"]} == {QUOTA}
    hidden = await vre.http.get("/datalake/usage", params={"scope": scope}, headers=vre.h("carol"))
    assert hidden.status_code == 404
    # a viewer reads but does not write; an outsider does not even see the scope
    assert (await _upload(vre, "vic", scope, "inputs/v.txt", b"v")).status_code == 403
    assert (await _upload(vre, "carol", scope, "inputs/c.txt", b"c")).status_code == 404
    anonymous = await vre.http.get(f"/datalake/dids/{scope}")
    assert anonymous.status_code == 401


async def test_public_project_data_is_readable_by_any_signed_in_user(vre: Vre) -> None:
    scope = vre.scope(vre.public)
    put = await _upload(vre, "alice", scope, "open/catalog.fits", b"open data")
    assert put.status_code == 201, put.text
    read = await vre.http.get(f"/datalake/files/{scope}/open/catalog.fits", headers=vre.h("carol"))
    assert read.status_code == 200
    assert read.content == b"open data"
    listed = await vre.http.get(f"/datalake/dids/{scope}", headers=vre.h("carol"))
    assert listed.status_code == 200
    assert "open/catalog.fits" in [d["name"] for d in listed.json()["items"]]
    write = await _upload(vre, "carol", scope, "open/mine.txt", b"no")
    assert write.status_code == 403
    assert write.json()["type"].endswith("/project-forbidden")


def _expected(action: str, user: str, public: bool) -> int:
    role = ROLE_OF.get(user) if not public or user == "alice" else None
    if role is None and not public:
        return 404  # existence of a private project is private
    column = role or "signed-in"
    return 0 if TABLE[action][column] == "✔" else 403


@pytest.mark.parametrize("public", [False, True], ids=["private", "public"])
async def test_the_permission_table_in_project_scopes(vre: Vre, public: bool) -> None:
    """data.read / data.write / data.delete for every role and an outsider, as documented."""
    slug = vre.public if public else vre.private
    scope, tag = vre.scope(slug), uuid.uuid4().hex[:6]
    seed = f"table/{tag}/seed.txt"
    assert (await _upload(vre, "alice", scope, seed, b"seed")).status_code == 201
    for user in ("alice", "mia", "bob", "vic", "carol"):
        # data.read
        read = await vre.http.get(f"/datalake/dids/{scope}/{seed}", headers=vre.h(user))
        want = _expected("data.read", user, public)
        assert read.status_code == (want or 200), (user, read.text)
        # data.write: a new dataset
        body = {"name": f"table/{tag}/ds-{user}", "type": "dataset"}
        made = await vre.http.post(f"/datalake/dids/{scope}", json=body, headers=vre.h(user))
        want = _expected("data.write", user, public)
        assert made.status_code == (want or 201), (user, made.text)
        # data.delete: detach the seed from a dataset alice attached it to
        ds = f"table/{tag}/del-{user}"
        alice = vre.h("alice")
        created = await vre.http.post(
            f"/datalake/dids/{scope}", json={"name": ds, "type": "dataset"}, headers=alice
        )
        assert created.status_code == 201, created.text
        dids = {"dids": [f"{scope}:{seed}"]}
        attached = await vre.http.post(
            f"/datalake/dids/{scope}/{ds}/attach", json=dids, headers=alice
        )
        assert attached.status_code == 204, attached.text
        detached = await vre.http.post(
            f"/datalake/dids/{scope}/{ds}/detach", json=dids, headers=vre.h(user)
        )
        want = _expected("data.delete", user, public)
        assert detached.status_code == (want or 204), (user, detached.text)


# ----------------------------------------------------------------------------- provenance


async def _graph(vre: Vre, user: str, entity: str, direction: str = "up") -> httpx.Response:
    return await vre.http.get(
        "/provenance",
        params={"entity": entity, "direction": direction, "depth": 3},
        headers=vre.h(user),
    )


async def test_uploads_and_attachments_land_in_the_provenance_graph(vre: Vre) -> None:
    scope = vre.scope(vre.private)
    for name in ("run1/a.dat", "run1/b.dat"):
        assert (await _upload(vre, "bob", scope, name, name.encode())).status_code == 201
    made = await vre.http.post(
        f"/datalake/dids/{scope}",
        json={"name": "run1/inputs", "type": "dataset"},
        headers=vre.h("bob"),
    )
    assert made.status_code == 201, made.text
    dids = {"dids": [f"{scope}:run1/a.dat", f"{scope}:run1/b.dat"]}
    attach = await vre.http.post(
        f"/datalake/dids/{scope}/run1/inputs/attach", json=dids, headers=vre.h("bob")
    )
    assert attach.status_code == 204, attach.text
    await vre.deliver()

    file_id = did_id(scope, "run1/a.dat")
    up = await _graph(vre, "alice", file_id)
    assert up.status_code == 200, up.text
    nodes = {n["id"]: n for n in up.json()["nodes"]}
    assert nodes[file_id]["project"] == vre.private
    uploads = [n for n in nodes.values() if n["type"] == "upload"]
    assert len(uploads) == 1
    assert uploads[0]["actor"] == "bob"
    assert uploads[0]["attributes"]["bytes"] == len(b"run1/a.dat")

    dataset_id = did_id(scope, "run1/inputs")
    back = await _graph(vre, "vic", dataset_id)
    assert back.status_code == 200, back.text
    ids = {n["id"] for n in back.json()["nodes"]}
    assert {file_id, did_id(scope, "run1/b.dat")} <= ids
    assert any(n["type"] == "attach" for n in back.json()["nodes"])
    down = await _graph(vre, "alice", file_id, "down")
    assert dataset_id in {n["id"] for n in down.json()["nodes"]}
    # an outsider learns nothing about a private project's data
    assert (await _graph(vre, "carol", file_id)).status_code == 404


async def _project_without_relay(
    http: httpx.AsyncClient, datalake: FastAPI, issuer: TestIssuer, slug: str
) -> ProvenanceRecorder:
    """Alice's project ``slug``, and the datalake's recorder with its relay stopped (nothing is
    delivered behind the test's back, as in a process about to die)."""
    await _created(http, issuer.headers("alice"), name=slug, slug=slug)
    recorder: ProvenanceRecorder = datalake.state.factory.provenance
    assert recorder.relay is not None
    await recorder.relay.stop()
    return recorder


async def test_an_upload_answers_before_its_event_is_marked_ready(
    dl_settings: DatalakeSettings,
    issuer: TestIssuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outbox's disk is slow: the upload answers at once, the event is ready after."""
    slug = "m" + uuid.uuid4().hex[:8]
    scope = Vre.scope(slug)
    gateway, datalake = embedded(tmp_path, dl_settings, issuer)
    async with app_client(gateway, timeout=60) as http:
        recorder = await _project_without_relay(http, datalake, issuer, slug)
        assert recorder.outbox is not None
        outbox = recorder.outbox
        settle = outbox.settle
        disk = asyncio.Event()

        async def slow(*args: Any, **kwargs: Any) -> None:
            await disk.wait()
            await settle(*args, **kwargs)

        monkeypatch.setattr(outbox, "settle", slow)
        put = await http.put(
            f"/datalake/files/{scope}/slow/out.dat", content=b"x" * 1000, headers=issuer.headers()
        )
        assert put.status_code == 201, put.text
        assert await outbox.count(PENDING) == 1  # answered while the disk had not written
        disk.set()
        await recorder.marked()
        assert await outbox.count(PENDING) == 0
        assert await outbox.count(READY) == 1


async def test_an_event_survives_a_crash_between_upload_and_delivery(
    dl_settings: DatalakeSettings,
    issuer: TestIssuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies after Rucio registered the upload, before the event is ready."""
    slug = "c" + uuid.uuid4().hex[:8]
    scope = Vre.scope(slug)
    file_id = did_id(scope, "crash/out.dat")

    gateway, datalake = embedded(tmp_path, dl_settings, issuer)
    async with app_client(gateway, timeout=60) as http:
        recorder = await _project_without_relay(http, datalake, issuer, slug)
        assert recorder.outbox is not None

        async def crash(*_: Any, **__: Any) -> None:
            raise OSError("killed before the event was marked ready")

        monkeypatch.setattr(recorder.outbox, "settle", crash)
        put = await http.put(
            f"/datalake/files/{scope}/crash/out.dat", content=b"x" * 1000, headers=issuer.headers()
        )
        assert put.status_code == 201, put.text  # Rucio has the file ...
        await recorder.marked()
        assert await recorder.outbox.count(PENDING) == 1  # ... the event is still pending
        monkeypatch.undo()
        # a crash before Rucio was touched leaves a pending event for nothing
        ghost = Event.create(
            EventKind.UPLOAD, "x|y", service="datalake", generated=[did_id(scope, "never")]
        )
        await recorder.outbox.add(ghost, state=PENDING)

    # the restarted process settles what was pending: Rucio has one file, not the other
    gateway, datalake = embedded(tmp_path, dl_settings, issuer, pending_grace=0.0)
    async with app_client(gateway, timeout=60) as http:
        for _ in range(100):
            graph = await http.get(
                "/provenance", params={"entity": file_id}, headers=issuer.headers("alice")
            )
            if graph.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert graph.status_code == 200, graph.text
        assert [n["actor"] for n in graph.json()["nodes"] if n["type"] == "upload"] == ["alice"]
        outbox: FileOutbox = datalake.state.factory.provenance.outbox
        assert await outbox.count(PENDING) == 0
        ghost_graph = await http.get(
            "/provenance", params={"entity": did_id(scope, "never")}, headers=issuer.headers()
        )
        assert ghost_graph.status_code == 404


# ----------------------------------------------------------------------------- distributed


async def test_distributed_mode_over_http(
    rucio_server: LocalRucio, issuer: TestIssuer, tmp_path: Path
) -> None:
    """Gateway and datalake as separate servers: scope creation with the gateway's service
    token, project access asked of the gateway with the caller's token, events posted back."""
    gw_port, dl_port = free_port(), free_port()
    gw_url, dl_url = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{dl_port}"
    service_token = issuer.token("vre-service", **{"wlcg.groups": ["/vre/services"]})
    token_file = tmp_path / "service.token"
    token_file.write_text(service_token + "\n")
    base = make_settings(**settings_params(rucio_server, issuer))
    dl_settings = base.model_copy(
        update={
            "gateway_url": gw_url,
            "provenance": ProvenanceSettings(
                outbox_path=tmp_path / "outbox.sqlite",
                service_token_file=token_file,
                relay_interval_seconds=0.2,
            ),
        }
    )
    gw_settings = GatewaySettings.model_validate(
        {
            "mode": "distributed",
            "auth": issuer.auth_settings(),
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"},
            "migrations": "upgrade",
            "rate_limit": {"enabled": False},
            "search": {"sources": ["projects"]},
            "service_urls": {"datalake": dl_url},
            "projects": {"provisioner_token_file": token_file},
        }
    )
    validator = issuer.validator()
    slug = "d" + uuid.uuid4().hex[:8]
    scope = f"proj.{slug}"
    with (
        ServerThread(create_datalake(dl_settings, validator=validator), port=dl_port),
        ServerThread(create_gateway(gw_settings, validator=validator), port=gw_port),
    ):
        async with httpx.AsyncClient(timeout=60) as http:
            made = await http.post(
                f"{gw_url}/projects", json={"name": "Dist", "slug": slug}, headers=issuer.headers()
            )
            assert made.status_code == 201, made.text
            put = await http.put(
                f"{gw_url}/datalake/files/{scope}/d/x.dat", content=b"x", headers=issuer.headers()
            )
            assert put.status_code == 201, put.text
            outsider = await http.get(
                f"{dl_url}/dids/{scope}/d/x.dat", headers=issuer.headers("carol")
            )
            assert outsider.status_code == 404, outsider.text
            for _ in range(100):
                graph = await http.get(
                    f"{gw_url}/provenance",
                    params={"entity": did_id(scope, "d/x.dat")},
                    headers=issuer.headers(),
                )
                if graph.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert graph.status_code == 200, graph.text
            assert {n["project"] for n in graph.json()["nodes"]} == {slug}
