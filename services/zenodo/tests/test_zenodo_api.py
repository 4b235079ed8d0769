"""The zenodo service's API on the Zenodo stand-in: credentials, records search, errors,
and the OpenAPI document (no Data Lake needed here)."""

from __future__ import annotations

import logging
import stat

import pytest
from sqlalchemy import text

from services.zenodo.tests.conftest import ALICE_TOKEN, BOB_TOKEN, AppClient
from services.zenodo.tests.support.standin import ZenodoStandIn
from vre_common.testing import TestIssuer
from vre_zenodo.config import ZenodoSettings
from vre_zenodo.main import create_app

PROBLEM = "application/problem+json"


async def test_credentials_register_inspect_forget(
    zenodo_app: AppClient,
    issuer: TestIssuer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = issuer.headers("alice")
    async with zenodo_app() as client:
        empty = await client.get("/credentials", headers=alice)
        assert empty.status_code == 200
        assert empty.json()["registered"] is False
        put = await client.put("/credentials", json={"token": ALICE_TOKEN}, headers=alice)
        assert put.status_code == 200, put.text
        status = put.json()
        assert status["registered"] is True
        assert status["verified_at"]
        assert ALICE_TOKEN not in put.text
        got = await client.get("/credentials", headers=alice)
        assert got.json()["registered"] is True
        assert ALICE_TOKEN not in got.text
        # bob has none
        bob = await client.get("/credentials", headers=issuer.headers("bob"))
        assert bob.json()["registered"] is False
        factory = client.app.state.factory  # type: ignore[attr-defined]
        async with factory.db.engine.connect() as connection:
            stored = (
                await connection.execute(text("SELECT token_encrypted FROM zenodo_credentials"))
            ).scalar_one()
        assert ALICE_TOKEN not in stored
        assert factory.cipher.decrypt(stored) == ALICE_TOKEN
        deleted = await client.delete("/credentials", headers=alice)
        assert deleted.status_code == 204
        assert (await client.get("/credentials", headers=alice)).json()["registered"] is False
        assert (await client.delete("/credentials", headers=alice)).status_code == 204
        key_file = factory.settings.data_dir / "credentials.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ALICE_TOKEN not in caplog.text
    out, err = capfd.readouterr()
    assert ALICE_TOKEN not in out
    assert ALICE_TOKEN not in err


async def test_credentials_refused_by_zenodo(zenodo_app: AppClient, issuer: TestIssuer) -> None:
    async with zenodo_app() as client:
        put = await client.put(
            "/credentials", json={"token": "wrong-token-123"}, headers=issuer.headers("alice")
        )
        assert put.status_code == 422
        assert put.headers["content-type"] == PROBLEM
        assert put.json()["errors"][0]["loc"] == ["body", "token"]
        assert "wrong-token-123" not in put.text
        short = await client.put("/credentials", json={"token": "x"}, headers=issuer.headers())
        assert short.status_code == 422
        assert "x" not in str(short.json()["errors"][0].get("input", ""))


async def test_key_from_settings_and_rotation(
    tmp_path: object, standin: ZenodoStandIn, issuer: TestIssuer
) -> None:
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from services.zenodo.tests.conftest import zenodo_settings
    from vre_common.testing import app_client

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert isinstance(tmp_path, type(tmp_path))
    base = zenodo_settings(tmp_path, standin.base_url, issuer)  # type: ignore[arg-type]
    first = base.model_copy(update={"credentials_key": SecretStr(old)})
    async with app_client(create_app(first, validator=issuer.validator())) as client:
        put = await client.put(
            "/credentials", json={"token": ALICE_TOKEN}, headers=issuer.headers()
        )
        assert put.status_code == 200
    rotated = base.model_copy(
        update={"credentials_key": SecretStr(new), "previous_credentials_keys": [SecretStr(old)]}
    )
    async with app_client(create_app(rotated, validator=issuer.validator())) as client:
        search = await client.get("/records", params={"size": 50}, headers=issuer.headers())
        assert search.json()["page_size_cap"] == 100  # the token still decrypts
    lost = base.model_copy(update={"credentials_key": SecretStr(new)})
    async with app_client(create_app(lost, validator=issuer.validator())) as client:
        refused = await client.post(
            "/depositions", json={"dids": ["user.alice:x"]}, headers=issuer.headers()
        )
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/zenodo-token-missing")
        assert "decrypted" in refused.json()["detail"]


async def test_records_search_respects_caps(
    zenodo_app: AppClient, standin: ZenodoStandIn, issuer: TestIssuer, uid: str
) -> None:
    keyword = f"api{uid}"
    ids = [
        standin.add_record({"f.txt": b"x"}, title=f"R{i}", keywords=[keyword]) for i in range(60)
    ]
    newest_first = ids[::-1]
    async with zenodo_app() as client:
        standin.requests.clear()
        anonymous = await client.get(
            "/records", params={"q": keyword, "size": 60, "page": 1}, headers=issuer.headers()
        )
        assert anonymous.status_code == 200, anonymous.text
        body = anonymous.json()
        assert body["page_size_cap"] == 25
        assert body["total"] == 60
        assert [r["id"] for r in body["items"]] == newest_first
        assert not body["has_next"]
        assert [s for _, p, s in standin.requests if p == "/api/records"] == [25, 25, 25]
        second = await client.get(
            "/records", params={"q": keyword, "size": 40, "page": 2}, headers=issuer.headers()
        )
        assert [r["id"] for r in second.json()["items"]] == newest_first[40:60]
        await client.put("/credentials", json={"token": ALICE_TOKEN}, headers=issuer.headers())
        standin.requests.clear()
        authenticated = await client.get(
            "/records", params={"q": keyword, "size": 60}, headers=issuer.headers()
        )
        assert authenticated.json()["page_size_cap"] == 100
        assert len(authenticated.json()["items"]) == 60
        assert [s for _, p, s in standin.requests if p == "/api/records"] == [60]
        too_big = await client.get("/records", params={"size": 101}, headers=issuer.headers())
        assert too_big.status_code == 422
        too_deep = await client.get(
            "/records", params={"size": 100, "page": 101}, headers=issuer.headers()
        )
        assert too_deep.status_code == 422
        assert "10000" in too_deep.json()["detail"]
        record = await client.get(f"/records/{ids[0]}", headers=issuer.headers())
        assert record.status_code == 200
        assert record.json()["files"][0]["key"] == "f.txt"
        missing = await client.get("/records/42", headers=issuer.headers())
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM


async def test_revoked_token_asks_to_register_again(
    zenodo_app: AppClient, standin: ZenodoStandIn, issuer: TestIssuer
) -> None:
    revoked = "zenodo-token-carol-0123456789"
    standin.tokens[revoked] = "carol"
    async with zenodo_app() as client:
        put = await client.put(
            "/credentials", json={"token": revoked}, headers=issuer.headers("carol")
        )
        assert put.status_code == 200
        del standin.tokens[revoked]
        answer = await client.get("/depositions/zenodo", headers=issuer.headers("carol"))
        assert answer.status_code == 403
        problem = answer.json()
        assert problem["type"].endswith("/zenodo-token-rejected")
        assert "PUT /zenodo/credentials" in problem["detail"]
        assert "WWW-Authenticate" not in answer.headers


async def test_operations_needing_a_token(zenodo_app: AppClient, issuer: TestIssuer) -> None:
    async with zenodo_app() as client:
        for method, path, body in [
            ("POST", "/depositions", {"dids": ["user.bob:x"]}),
            ("GET", "/depositions/zenodo", None),
        ]:
            answer = await client.request(method, path, json=body, headers=issuer.headers("bob"))
            assert answer.status_code == 403, answer.text
            assert answer.json()["type"].endswith("/zenodo-token-missing")
        unauthenticated = await client.get("/depositions")
        assert unauthenticated.status_code == 401
        listing = await client.get("/depositions", headers=issuer.headers("bob"))
        assert listing.json() == {"items": []}
        missing = await client.get("/depositions/nope", headers=issuer.headers("bob"))
        assert missing.status_code == 404
        assert (await client.get("/imports/nope", headers=issuer.headers("bob"))).status_code == 404


async def test_request_validation(zenodo_app: AppClient, issuer: TestIssuer) -> None:
    async with zenodo_app() as client:
        both = await client.post(
            "/imports",
            json={"doi": "10.5281/zenodo.1", "record_id": 1, "scope": "user.alice"},
            headers=issuer.headers(),
        )
        assert both.status_code == 422
        assert both.headers["content-type"] == PROBLEM
        none = await client.post("/depositions", json={}, headers=issuer.headers())
        assert none.status_code == 422
        bad_did = await client.post(
            "/depositions", json={"dids": ["nocolon"]}, headers=issuer.headers()
        )
        assert bad_did.status_code == 422
        bad_type = await client.post(
            "/depositions",
            json={"dids": ["a:b"], "metadata": {"upload_type": "novel"}},
            headers=issuer.headers(),
        )
        assert bad_type.status_code == 422


async def test_datalake_not_configured(zenodo_app: AppClient, issuer: TestIssuer) -> None:
    async with zenodo_app() as client:
        await client.put("/credentials", json={"token": ALICE_TOKEN}, headers=issuer.headers())
        answer = await client.post(
            "/depositions", json={"dids": ["user.alice:x"]}, headers=issuer.headers()
        )
        assert answer.status_code == 503
        assert "VRE_ZENODO_DATALAKE__URL" in answer.json()["detail"]
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text


async def test_unreachable_zenodo_is_503(tmp_path: object, issuer: TestIssuer) -> None:
    from services.zenodo.tests.conftest import zenodo_settings
    from vre_common.testing import app_client, free_port

    settings = zenodo_settings(tmp_path, f"http://127.0.0.1:{free_port()}", issuer)  # type: ignore[arg-type]
    async with app_client(create_app(settings, validator=issuer.validator())) as client:
        answer = await client.get("/records", headers=issuer.headers())
        assert answer.status_code == 503
        assert answer.headers["Retry-After"]
        ready = await client.get("/readyz")  # Zenodo is reported, not required
        assert ready.status_code == 200
        assert {d["name"]: (d["up"], d["optional"]) for d in ready.json()["dependencies"]} == {
            "database": (True, False),
            "zenodo": (False, True),
        }


def test_openapi_documents_every_route() -> None:
    app = create_app(ZenodoSettings())  # builds without configuration, touches nothing
    spec = app.openapi()
    operations = {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path not in ("/healthz", "/readyz")
    }
    assert len(operations) == 22  # 17 + 5 of reproductions
    for (method, path), op in operations.items():
        assert op.get("summary"), (method, path)
        assert op.get("description"), (method, path)
        problems = [s for s, r in op["responses"].items() if s.startswith(("4", "5"))]
        assert "401" in problems, (method, path)
        for status in problems:
            content = op["responses"][status]["content"]
            assert "application/problem+json" in content, (method, path, status)
        ok = next(s for s in op["responses"] if s.startswith("2"))
        if path.endswith("/logs"):  # a reproduction's log is text
            assert "text/plain" in op["responses"][ok]["content"], (method, path)
        elif ok != "204":
            schema = op["responses"][ok]["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, path)
    schemas = spec["components"]["schemas"]
    for name in ("Import", "Deposition", "DepositionCreate", "CredentialsStatus", "RecordPage"):
        assert schemas[name].get("examples") or any(
            "examples" in p for p in schemas[name].get("properties", {}).values()
        ), name
    assert "HTTPValidationError" not in schemas


async def test_verify_mode_refuses_an_old_schema(tmp_path: object, issuer: TestIssuer) -> None:
    from services.zenodo.tests.conftest import zenodo_settings
    from vre_common.migrations import SchemaOutOfDateError
    from vre_common.testing import app_client

    settings = zenodo_settings(tmp_path, "http://127.0.0.1:9", issuer, migrations="verify")  # type: ignore[arg-type]
    with pytest.raises(SchemaOutOfDateError):
        async with app_client(create_app(settings, validator=issuer.validator())):
            pass


async def test_bob_cannot_see_alices_things(zenodo_app: AppClient, issuer: TestIssuer) -> None:
    async with zenodo_app() as client:
        await client.put("/credentials", json={"token": BOB_TOKEN}, headers=issuer.headers("bob"))
        alice = await client.get("/credentials", headers=issuer.headers("alice"))
        assert alice.json()["registered"] is False
