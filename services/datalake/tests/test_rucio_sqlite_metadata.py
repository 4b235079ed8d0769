"""Arbitrary DID metadata keys on the embedded SQLite Rucio (the ``vre_sqlite_meta`` plugin).

Rucio's own JSON metadata plugin is off on SQLite; ``write_config()`` configures ours there.
The REST API, the official rucio-clients (library and CLI), Rucio's core in the server venv
and the datalake service are exercised; the portable subset also runs on PostgreSQL (Rucio's
JSON plugin), which must answer alike.
"""

from __future__ import annotations

import configparser
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.datalake.tests.test_rucio_local import run_rucio_client
from vre_common.testing import TestIssuer
from vre_rucio_local import LocalRucio, LocalRucioConfig
from vre_rucio_local.server import PLUGINS_DIR, SQLITE_METADATA_PLUGIN

SCOPE = "vremeta"
RSE = "VRE-DISK-1"
PLUGIN_TABLE = "vre_did_meta"


class Rest:
    """The Rucio REST API as the admin (httpx, no SDK)."""

    def __init__(self, server: LocalRucio) -> None:
        self.http = httpx.Client(
            base_url=server.url, headers={"X-Rucio-Auth-Token": server.admin_token()}, timeout=30
        )
        response = self.http.post(f"/scopes/{server.admin_account}/{SCOPE}")
        assert response.status_code in (201, 409), response.text

    def add_files(self, *names: str) -> None:
        files = [{"scope": SCOPE, "name": n, "bytes": 1, "adler32": "00000001"} for n in names]
        response = self.http.post("/replicas/", json={"rse": RSE, "files": files})
        assert response.status_code == 201, response.text

    def add_dataset(self, name: str, *files: str) -> None:
        response = self.http.post(f"/dids/{SCOPE}/{name}", json={"type": "DATASET"})
        assert response.status_code == 201, response.text
        if files:
            dids = [{"scope": SCOPE, "name": f} for f in files]
            response = self.http.post(f"/dids/{SCOPE}/{name}/dids", json={"dids": dids})
            assert response.status_code == 201, response.text

    def set(self, name: str, meta: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"/dids/{SCOPE}/{name}/meta", json={"meta": meta})

    def set_key(self, name: str, key: str, value: Any) -> httpx.Response:
        return self.http.post(f"/dids/{SCOPE}/{name}/meta/{key}", json={"value": value})

    def get(self, name: str, plugin: str | None = None) -> dict[str, Any]:
        params = {"plugin": plugin} if plugin else {}
        response = self.http.get(f"/dids/{SCOPE}/{name}/meta", params=params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def delete(self, name: str, key: str) -> httpx.Response:
        return self.http.delete(f"/dids/{SCOPE}/{name}/meta", params={"key": key})

    def search_response(
        self, filters: list[dict[str, Any]], did_type: str = "file", **params: Any
    ) -> httpx.Response:
        query = {"type": did_type, "filters": repr(filters), **params}
        return self.http.get(f"/dids/{SCOPE}/dids/search", params=query)

    def search(self, filters: list[dict[str, Any]], did_type: str = "file", **params: Any) -> Any:
        response = self.search_response(filters, did_type, **params)
        assert response.status_code == 200, response.text
        items = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        return sorted(items, key=str)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def rest(rucio_server: LocalRucio) -> Iterator[Rest]:
    """REST client on the SQLite server, scope ``vremeta`` created."""
    client = Rest(rucio_server)
    yield client
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_rest(request: pytest.FixtureRequest) -> Iterator[Rest]:
    """REST client on the SQLite server, then on the PostgreSQL one (skipped if PG is down)."""
    fixture = "rucio_server" if request.param == "sqlite" else "rucio_server_pg"
    server: LocalRucio = request.getfixturevalue(fixture)
    client = Rest(server)
    yield client
    client.close()


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _plugin_rows(server: LocalRucio, name: str) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{server.data_dir / 'rucio.db'}?mode=ro", uri=True) as db:
        return db.execute(
            f"SELECT name, meta FROM {PLUGIN_TABLE} WHERE name = ?",
            (name,),
        ).fetchall()


# ------------------------------------------------------------------------ configuration


def test_plugin_is_configured_for_sqlite_only(rucio_server: LocalRucio, tmp_path: Path) -> None:
    def written(server: LocalRucio) -> configparser.ConfigParser:
        server.write_config()
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(server.config_path)
        return cfg

    venv = rucio_server.venv_dir
    sqlite = LocalRucio(LocalRucioConfig(data_dir=tmp_path / "s", venv_dir=venv))
    assert written(sqlite)["metadata"]["plugins"] == SQLITE_METADATA_PLUGIN
    postgres = LocalRucio(
        LocalRucioConfig(
            data_dir=tmp_path / "p",
            venv_dir=venv,
            database_url="postgresql+psycopg://u@127.0.0.1:5432/x",
            database_schema="rucio",
        )
    )
    assert not written(postgres).has_section("metadata")  # Rucio's own JSON plugin
    # The server processes import the plugin by its bare name from the plugins folder only.
    env = sqlite.server_env()
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(PLUGINS_DIR)
    module = SQLITE_METADATA_PLUGIN.rpartition(".")[0]
    assert (PLUGINS_DIR / f"{module}.py").is_file()
    assert not (PLUGINS_DIR / "vre_datalake").exists()


def test_plugin_table_follows_the_dids(rucio_server: LocalRucio) -> None:
    with sqlite3.connect(f"file:{rucio_server.data_dir / 'rucio.db'}?mode=ro", uri=True) as db:
        sql = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (PLUGIN_TABLE,)
        ).fetchone()[0]  # created by the bootstrap
    assert "REFERENCES dids" in sql
    assert "ON DELETE CASCADE" in sql


# ------------------------------------------------------------------------ REST API (SQLite)


def test_rest_set_read_filter_and_delete_custom_keys(rest: Rest) -> None:
    uid = _uid()
    f0, f1, f2, ds = f"{uid}-f0", f"{uid}-f1", f"{uid}-f2", f"{uid}-ds"
    rest.add_files(f0, f1, f2)
    rest.add_dataset(ds, f0, f1)

    # Custom keys and a DID column in one call; then single keys.
    response = rest.set(
        f0,
        {
            "doi": "10.5281/zenodo.101",
            "title": "Crab nebula",
            "year": 2024,
            "zenith": 20.5,
            "calibrated": True,
            "observed": "2024-03-01T12:00:00Z",
            "project": "vre",
        },
    )
    assert response.status_code in (200, 201), response.text
    for key, value in {
        "title": "Vela pulsar",
        "year": "2019",
        "zenith": 45,
        "observed": "2023-05-01 08:00:00",
    }.items():
        response = rest.set_key(f1, key, value)
        assert response.status_code in (200, 201), response.text
    assert rest.set(ds, {"doi": "10.5281/zenodo.100"}).status_code in (200, 201)

    everything = rest.get(f0, "ALL")  # DID columns + custom keys
    assert everything["did_type"] == "FILE"
    assert everything["bytes"] == 1
    assert everything["account"] == "root"
    assert everything["project"] == "vre"
    assert {k: everything[k] for k in ("doi", "title", "year", "zenith", "calibrated")} == {
        "doi": "10.5281/zenodo.101",
        "title": "Crab nebula",
        "year": 2024,
        "zenith": 20.5,
        "calibrated": True,
    }
    assert everything["observed"] == "2024-03-01T12:00:00Z"
    columns = rest.get(f0)  # the default plugin: DID columns only
    assert columns["project"] == "vre"
    assert "doi" not in columns
    assert rest.get(f0, "JSON") == {
        "doi": "10.5281/zenodo.101",
        "title": "Crab nebula",
        "year": 2024,
        "zenith": 20.5,
        "calibrated": True,
        "observed": "2024-03-01T12:00:00Z",
    }
    assert rest.get(f2, "JSON") == {}

    # Searches: equality, every operator suffix, wildcards, AND, OR, type, long, limit.
    search = rest.search
    assert search([{"doi": "10.5281/zenodo.101"}]) == [f0]
    assert search([{"year.gte": 2020}]) == [f0]
    assert search([{"year.lt": 2020}]) == [f1]  # "2019" is a numeric string
    assert search([{"year": 2019}]) == [f1]
    assert search([{"zenith.gt": 30}]) == [f1]
    assert search([{"zenith.lte": 20.5}]) == [f0]
    assert search([{"title": "*nebula"}]) == [f0]
    assert search([{"title": "*NEBULA"}]) == []  # case-sensitive, like PostgreSQL's LIKE
    assert search([{"title.ne": "Vela*"}]) == [f0]
    assert search([{"title.ne": "Crab nebula"}]) == [f1]  # f2 has no title: not a match
    assert search([{"calibrated": True}]) == [f0]
    assert search([{"calibrated": "true"}]) == [f0]  # Rucio typecasts the string
    assert search([{"observed.gt": "2024-01-01T00:00:00"}]) == [f0]  # dates compare as dates
    assert search([{"observed.lte": "2024-01-01 00:00:00"}]) == [f1]
    assert search([{"year.gte": 2000, "zenith.lt": 30}]) == [f0]
    assert search([{"doi": "10.5281/zenodo.101"}, {"zenith.gt": 30}]) == [f0, f1]
    assert search([{"name": f"{uid}-f*", "year.gte": 0}]) == [f0, f1]
    assert search([{"name": f1, "year.gte": 0}]) == [f1]
    assert search([{"doi": "10.5281/zenodo.10*"}], "collection") == [ds]
    assert search([{"doi": "10.5281/zenodo.10*"}], "all") == [ds, f0]
    assert search([{"doi": "10.5281/zenodo.101"}], long="True") == [
        {"scope": SCOPE, "name": f0, "did_type": "FILE", "bytes": 1, "length": None}
    ]
    assert len(search([{"year.gte": 0}], limit=1)) == 1
    # recursive: into the matching collections, with the same filters on their content
    assert search([{"name": ds, "doi": "10.5281/zenodo.10*"}], "all", recursive="True") == [
        ds,
        f0,
    ]

    # Deleting a key; a missing key and a missing DID are 404.
    assert rest.delete(f0, "title").status_code == 200
    assert "title" not in rest.get(f0, "ALL")
    assert search([{"title": "Crab nebula"}]) == []
    assert search([{"title": "Vela*"}]) == [f1]
    assert rest.delete(f0, "title").status_code == 404
    assert rest.delete(f"{uid}-nothing", "title").status_code == 404
    response = rest.http.get(f"/dids/{SCOPE}/{uid}-nothing/meta", params={"plugin": "JSON"})
    assert response.status_code == 404


def test_rest_refuses_what_rucio_refuses(rest: Rest) -> None:
    uid = _uid()
    rest.add_files(f"{uid}-f")
    # A DID property is no metadata key (Rucio's gateway refuses its RESERVED_KEYS, and the
    # plugin refuses every dids column it is offered).
    response = rest.set_key(f"{uid}-f", "account", "bob")
    assert response.status_code >= 400, response.text
    assert rest.get(f"{uid}-f", "ALL")["account"] == "root"
    # '.' separates a key from its operator in filters: Rucio refuses it in keys.
    assert rest.set(f"{uid}-f", {"bad.key": 1}).status_code == 400
    # A search mixing a DID column and a custom key needs one plugin for both (Rucio).
    mixed = rest.search_response([{"project": "vre", "doi": "x"}])
    assert mixed.status_code >= 400
    assert rest.set(f"{uid}-nothing", {"doi": "x"}).status_code == 404


def test_rest_bulk_calls(rest: Rest) -> None:
    uid = _uid()
    names = [f"{uid}-a", f"{uid}-b"]
    rest.add_files(*names)
    dids = [
        {"scope": SCOPE, "name": n, "meta": {"doi": f"10.5281/zenodo.{i}", "n": i}}
        for i, n in enumerate(names)
    ]
    response = rest.http.post("/dids/bulkdidsmeta", json={"dids": dids})
    assert response.status_code in (200, 201), response.text
    response = rest.http.post(
        "/dids/bulkmeta",
        json={"dids": [{"scope": SCOPE, "name": n} for n in names], "plugin": "ALL"},
    )
    assert response.status_code == 200, response.text
    found = {m["name"]: m for m in map(json.loads, response.text.splitlines()) if m}
    assert found[names[1]]["doi"] == "10.5281/zenodo.1"
    assert found[names[1]]["n"] == 1
    assert rest.search([{"n.gte": 0}, {"doi": "nothing"}]) == sorted(names)


def test_concurrent_writers_lose_no_key(rest: Rest, rucio_server: LocalRucio) -> None:
    name = f"{_uid()}-busy"
    rest.add_files(name)
    token = rucio_server.admin_token()

    def set_key(index: int) -> int:
        with httpx.Client(base_url=rucio_server.url, timeout=60) as http:
            response = http.post(
                f"/dids/{SCOPE}/{name}/meta/k{index}",
                json={"value": index},
                headers={"X-Rucio-Auth-Token": token},
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(set_key, range(24)))
    assert set(codes) <= {200, 201}, codes
    assert rest.get(name, "JSON") == {f"k{i}": i for i in range(24)}


def test_recursive_set_reaches_the_content(rest: Rest) -> None:
    uid = _uid()
    rest.add_files(f"{uid}-a", f"{uid}-b")
    rest.add_dataset(f"{uid}-ds", f"{uid}-a", f"{uid}-b")
    response = rest.http.post(
        f"/dids/{SCOPE}/{uid}-ds/meta", json={"meta": {"campaign_id": "c1"}, "recursive": True}
    )
    assert response.status_code in (200, 201), response.text
    assert rest.search([{"campaign_id": "c1"}], "all") == [f"{uid}-a", f"{uid}-b", f"{uid}-ds"]


def test_deleting_the_did_deletes_its_metadata(rest: Rest, rucio_server: LocalRucio) -> None:
    name = f"{_uid()}-gone"
    rest.add_dataset(name)
    assert rest.set(name, {"doi": "10.5281/zenodo.9"}).status_code in (200, 201)
    assert [row[0] for row in _plugin_rows(rucio_server, name)] == [name]
    assert rest.set_key(name, "lifetime", -1).status_code in (200, 201)  # expired
    rucio_server.run_daemons_once()  # the undertaker deletes the dataset
    assert rest.http.get(f"/dids/{SCOPE}/{name}/meta").status_code == 404
    assert _plugin_rows(rucio_server, name) == []  # ON DELETE CASCADE


# ------------------------------------------------------------------------ SQLite and PostgreSQL


def test_custom_keys_answer_alike_on_sqlite_and_postgresql(any_rest: Rest) -> None:
    uid = _uid()
    a, b = f"{uid}-a", f"{uid}-b"
    any_rest.add_files(a, b)
    assert any_rest.set(a, {"doi": "10.5281/zenodo.1", "title": "A", "pages": 12}).status_code in (
        200,
        201,
    )
    assert any_rest.set(b, {"title": "B", "pages": 3, "offset": -5}).status_code in (200, 201)
    everything = any_rest.get(a, "ALL")
    assert (everything["did_type"], everything["doi"], everything["pages"]) == (
        "FILE",
        "10.5281/zenodo.1",
        12,
    )
    assert any_rest.get(a, "JSON") == {"doi": "10.5281/zenodo.1", "title": "A", "pages": 12}
    assert "doi" not in any_rest.get(a)
    mine = f"{uid}-*"
    assert any_rest.search([{"name": mine, "doi": "10.5281/zenodo.1"}]) == [a]
    assert any_rest.search([{"name": mine, "pages.gt": 5}]) == [a]
    assert any_rest.search([{"name": mine, "pages.lte": 5}, {"name": mine, "title": "A"}]) == [
        a,
        b,
    ]
    assert any_rest.search([{"name": mine, "title.ne": "A"}]) == [b]
    assert any_rest.search([{"name": mine, "offset": "-5"}]) == [b]  # a string: compared as text
    assert any_rest.search([{"name": mine, "offset.lt": 0}]) == [b]
    assert any_rest.delete(a, "doi").status_code == 200
    assert any_rest.get(a, "JSON") == {"title": "A", "pages": 12}
    assert any_rest.search([{"name": mine, "doi": "10.5281/zenodo.1"}]) == []


# ------------------------------------------------------------------------ official clients


def test_official_client_library_and_cli(rest: Rest, rucio_client_config: Path) -> None:
    uid = _uid()
    result = run_rucio_client(
        rucio_client_config,
        """
        from rucio.client import Client

        client = Client()
        scope, uid, rse = params["scope"], params["uid"], params["rse"]
        f1, f2, ds = f"{uid}-f1", f"{uid}-f2", f"{uid}-ds"
        for name in (f1, f2):
            client.add_replica(rse, scope, name, 1, "00000001")
        client.add_did(scope, ds, "DATASET", meta={"doi": "10.5281/zenodo.5", "year": 2025})
        client.attach_dids(scope, ds, [{"scope": scope, "name": f1}, {"scope": scope, "name": f2}])
        client.set_metadata(scope, f1, "title", "first")
        client.set_metadata_bulk(scope, f1, {"doi": "10.5281/zenodo.6", "size_mb": 1.5})
        client.set_dids_metadata_bulk(
            [{"scope": scope, "name": f2, "meta": {"doi": "10.5281/zenodo.7", "size_mb": 9}}]
        )
        out = {
            "all": client.get_metadata(scope, f1, plugin="ALL"),
            "default": client.get_metadata(scope, f1),
            "json": client.get_metadata(scope, ds, plugin="JSON"),
            "bulk": list(client.get_metadata_bulk(
                [{"scope": scope, "name": f2}], plugin="ALL"
            )),
            "eq": sorted(client.list_dids(scope, [{"doi": "10.5281/zenodo.6"}], did_type="file")),
            "gt": sorted(client.list_dids(scope, [{"size_mb.gt": 1.5}], did_type="file")),
            "coll": sorted(client.list_dids(scope, [{"year.gte": 2020}])),
            "long": list(client.list_dids(scope, [{"title": "first"}], "file", long=True)),
        }
        client.delete_metadata(scope, f1, "title")
        out["after_delete"] = client.get_metadata(scope, f1, plugin="JSON")
        print(json.dumps(out, default=str))
        """,
        scope=SCOPE,
        uid=uid,
        rse=RSE,
    )
    f1, f2, ds = f"{uid}-f1", f"{uid}-f2", f"{uid}-ds"
    assert result["all"]["did_type"] == "FILE"
    assert (result["all"]["title"], result["all"]["doi"], result["all"]["size_mb"]) == (
        "first",
        "10.5281/zenodo.6",
        1.5,
    )
    assert "doi" not in result["default"]
    assert result["json"] == {"doi": "10.5281/zenodo.5", "year": 2025}
    assert result["bulk"][0]["doi"] == "10.5281/zenodo.7"
    assert result["eq"] == [f1]
    assert result["gt"] == [f2]
    assert result["coll"] == [ds]
    assert result["long"] == [
        {"scope": SCOPE, "name": f1, "did_type": "FILE", "bytes": 1, "length": None}
    ]
    assert result["after_delete"] == {"doi": "10.5281/zenodo.6", "size_mb": 1.5}

    # The rucio CLI on the same keys.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "X509_"))}
    env["RUCIO_CONFIG"] = str(rucio_client_config)
    cli = Path(sys.executable).with_name("rucio")

    def rucio(*args: str) -> str:
        completed = subprocess.run(
            [str(cli), *args], capture_output=True, env=env, timeout=120, check=False, text=True
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        return completed.stdout

    license_ = f"cc-by-4.0-{uid}"
    rucio("did", "metadata", "set", "--key", "license", "--value", license_, f"{SCOPE}:{ds}")
    listed = rucio("did", "metadata", "list", "--plugin", "ALL", f"{SCOPE}:{ds}")
    assert "license" in listed
    assert license_ in listed
    # The CLI lists collections unless the filter says type=…, and Rucio refuses a filter
    # mixing type (a DID column) with a custom key: so a dataset here (same on PostgreSQL).
    found = rucio("did", "list", "--short", "--filter", f"license={license_}", f"{SCOPE}:*")
    assert found.split() == [f"{SCOPE}:{ds}"]
    rucio("did", "metadata", "unset", "--key", "license", f"{SCOPE}:{ds}")
    assert "license" not in rest.get(ds, "JSON")


# ------------------------------------------------------------------------ Rucio's core


_CORE_SCRIPT = """
import json, sys
from rucio.common.exception import InvalidMetadata
from rucio.common.types import InternalScope
from rucio.core import did
from rucio.db.sqla.constants import DatabaseOperationType
from rucio.db.sqla.session import db_session

params = json.loads(sys.argv[1])
scope = InternalScope(params["scope"])
did.set_metadata_bulk(scope=scope, name=params["name"], meta={"doi": "10.1/x", "n": 2})
did.set_metadata(scope=scope, name=params["name"], key="title", value="core")
try:  # a dids column no plugin manages (the REST API refuses it earlier)
    did.set_metadata(scope=scope, name=params["name"], key="is_open", value=False)
except InvalidMetadata:
    refused = True
else:
    refused = False
with db_session(DatabaseOperationType.READ) as session:
    meta = did.get_metadata(scope=scope, name=params["name"], plugin="ALL", session=session)
    found = list(did.list_dids(
        scope=scope, filters=[{"n.gt": 1, "title": "co*"}], did_type="all", session=session
    ))
print(json.dumps({"doi": meta["doi"], "n": meta["n"], "type": meta["did_type"].name,
                  "found": found, "refused": refused}))
"""


def test_core_creates_the_table_of_an_older_database(
    rest: Rest, rucio_server: LocalRucio, tmp_path: Path
) -> None:
    """A database bootstrapped before the plugin existed: the first use creates the table."""
    name = f"{_uid()}-core"
    rest.add_files(name)
    copy = tmp_path / "rucio.db"
    with (
        sqlite3.connect(rucio_server.data_dir / "rucio.db") as source,
        sqlite3.connect(copy) as target,
    ):
        source.backup(target)
        target.execute(f"DROP TABLE {PLUGIN_TABLE}")
    config = configparser.ConfigParser(interpolation=None)
    config.read(rucio_server.config_path)
    config["database"]["default"] = f"sqlite:///{copy}"
    config_path = tmp_path / "rucio.cfg"
    with config_path.open("w") as handle:
        config.write(handle)
    env = {**rucio_server.server_env(), "RUCIO_CONFIG": str(config_path)}
    completed = subprocess.run(
        [str(rucio_server.python), "-c", textwrap.dedent(_CORE_SCRIPT),
         json.dumps({"scope": SCOPE, "name": name})],
        capture_output=True, env=env, timeout=120, check=False, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result == {"doi": "10.1/x", "n": 2, "type": "FILE", "found": [name], "refused": True}
    with sqlite3.connect(copy) as db:
        assert db.execute(f"SELECT count(*) FROM {PLUGIN_TABLE}").fetchone() == (1,)


# ------------------------------------------------------------------------ datalake service


async def test_datalake_custom_metadata_on_sqlite(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    uid = _uid()
    headers = issuer.headers("alice")
    put = await client.put(
        f"/files/user.alice/{uid}/paper.pdf",
        content=b"p" * 10,
        params={"meta": ['doi="10.5281/zenodo.42"', 'title="A paper"', "pages=12"]},
        headers=headers,
    )
    assert put.status_code == 201, put.text
    await client.put(f"/files/user.alice/{uid}/data.csv", content=b"d" * 10, headers=headers)
    did = await client.get(f"/dids/user.alice/{uid}/paper.pdf", headers=headers)
    assert did.status_code == 200, did.text
    metadata = did.json()["metadata"]
    assert (metadata["doi"], metadata["title"], metadata["pages"]) == (
        "10.5281/zenodo.42",
        "A paper",
        12,
    )

    updated = await client.post(
        f"/dids/user.alice/{uid}/paper.pdf/metadata",
        json={"metadata": {"license": "cc-by-4.0", "version": "v2"}},  # custom + DID column
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["metadata"]["license"] == "cc-by-4.0"
    assert updated.json()["metadata"]["version"] == "v2"
    # The Zenodo service's DOI write-back: one bulk call on the published files.
    published = await client.post(
        "/metadata",
        json={
            "items": [
                {"did": f"user.alice:{uid}/{n}", "metadata": {"doi": "10.5281/zenodo.43"}}
                for n in ("paper.pdf", "data.csv")
            ]
        },
        headers=headers,
    )
    assert published.status_code == 204, published.text

    async def names(*conditions: str) -> list[str]:
        response = await client.get(
            "/dids/user.alice",
            params={"name": f"{uid}/*", "meta": list(conditions)},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        return sorted(d["name"] for d in response.json()["items"])

    assert await names("doi=10.5281/zenodo.43") == [f"{uid}/data.csv", f"{uid}/paper.pdf"]
    assert await names("pages>10") == [f"{uid}/paper.pdf"]
    assert await names("license!=nothing") == [f"{uid}/paper.pdf"]
