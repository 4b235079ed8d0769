"""The embedded Rucio server: start, RSEs, replication by the daemons, outages, PostgreSQL.

The official rucio-clients act as an independent witness; they run in subprocesses with
their own ``RUCIO_CONFIG`` so that their process-wide configuration cache stays private.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from vre_rucio_local import LocalRucio, LocalRucioConfig, RucioAdmin
from vre_rucio_local.scripts.daemon_pass import TransferCopyError, copy_file

SCOPE = "vretest"


def run_rucio_client(config: Path, code: str, **params: Any) -> Any:
    """Run ``code`` with the official client in a subprocess; it prints one JSON value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "X509_"))}
    env["RUCIO_CONFIG"] = str(config)
    prelude = "import json, sys\nparams = json.loads(sys.argv[1])\n"
    completed = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), json.dumps(params)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])


def files_named(root: Path, name: str) -> list[Path]:
    """Files called ``name`` anywhere under ``root``."""
    return [path for path in root.rglob(name) if path.is_file()]


@pytest.fixture(scope="module")
def replicated(
    rucio_server: LocalRucio, rucio_client_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Two files uploaded to RSE 1 by the official client, each with a rule to RSE 2,
    then one daemon pass."""
    source_dir = tmp_path_factory.mktemp("upload")
    suffix = os.urandom(4).hex()
    names = {"kept": f"kept-{suffix}.dat", "dropped": f"dropped-{suffix}.dat"}
    contents = {}
    for key, name in names.items():
        contents[key] = os.urandom(64 * 1024) + key.encode()
        (source_dir / name).write_bytes(contents[key])
    rse1, rse2 = rucio_server.rse_names
    rules = run_rucio_client(
        rucio_client_config,
        """
        from rucio.client import Client
        from rucio.client.uploadclient import UploadClient
        from rucio.common.exception import Duplicate

        client = Client()
        try:
            client.add_scope("root", params["scope"])
        except Duplicate:
            pass
        UploadClient(client).upload([
            {"path": path, "rse": params["rse1"], "did_scope": params["scope"]}
            for path in params["paths"]
        ])
        rules = {}
        for key, name in params["names"].items():
            dids = [{"scope": params["scope"], "name": name}]
            rules[key] = client.add_replication_rule(dids, 1, params["rse2"])[0]
        print(json.dumps(rules))
        """,
        scope=SCOPE,
        rse1=rse1,
        rse2=rse2,
        names=names,
        paths=[str(source_dir / name) for name in names.values()],
    )
    started = time.perf_counter()
    report = rucio_server.run_daemons_once()
    print(f"\ndaemon pass: {time.perf_counter() - started:.2f} s wall, {report}")
    return {"names": names, "contents": contents, "rules": rules}


def test_ping_answers_version(rucio_server: LocalRucio) -> None:
    response = httpx.get(f"{rucio_server.url}/ping")
    assert response.status_code == 200
    assert response.json() == {"version": "41.5.1"}
    timings = rucio_server.timings
    print(f"\nbootstrap {timings.bootstrap:.2f} s, start {timings.start:.2f} s")


def test_both_posix_rses_exist(rucio_server: LocalRucio, rucio_admin_token: str) -> None:
    rucio_server.provision()  # idempotent: a second run changes nothing
    headers = {"X-Rucio-Auth-Token": rucio_admin_token}
    response = httpx.get(f"{rucio_server.url}/rses/", headers=headers)
    assert response.status_code == 200
    names = {json.loads(line)["rse"] for line in response.text.splitlines() if line}
    assert set(rucio_server.rse_names) == {"VRE-DISK-1", "VRE-DISK-2"} <= names
    for name, prefix in rucio_server.rse_prefixes.items():
        response = httpx.get(f"{rucio_server.url}/rses/{name}/protocols", headers=headers)
        (protocol,) = response.json()
        assert protocol["scheme"] == "file"
        assert protocol["prefix"] == f"{prefix.resolve()}/"


def test_rule_to_second_rse_is_ok_after_a_daemon_pass(
    rucio_server: LocalRucio, rucio_client_config: Path, replicated: dict[str, Any]
) -> None:
    name, content = replicated["names"]["kept"], replicated["contents"]["kept"]
    state = run_rucio_client(
        rucio_client_config,
        """
        from rucio.client import Client
        print(json.dumps(Client().get_replication_rule(params["rule"])["state"]))
        """,
        rule=replicated["rules"]["kept"],
    )
    assert state == "OK"
    rse2 = rucio_server.rse_names[1]
    (copied,) = files_named(rucio_server.rse_prefixes[rse2], name)
    assert copied.read_bytes() == content


def test_official_client_downloads_the_copy_from_the_second_rse(
    rucio_server: LocalRucio,
    rucio_client_config: Path,
    replicated: dict[str, Any],
    tmp_path: Path,
) -> None:
    name, content = replicated["names"]["kept"], replicated["contents"]["kept"]
    run_rucio_client(
        rucio_client_config,
        """
        from rucio.client.downloadclient import DownloadClient
        result = DownloadClient().download_dids(
            [{"did": params["did"], "rse": params["rse"], "base_dir": params["dir"]}]
        )
        print(json.dumps([item["clientState"] for item in result]))
        """,
        did=f"{SCOPE}:{name}",
        rse=rucio_server.rse_names[1],
        dir=str(tmp_path),
    )
    (downloaded,) = files_named(tmp_path, name)
    assert hashlib.sha256(downloaded.read_bytes()).digest() == hashlib.sha256(content).digest()


def test_account_usage_is_counted_after_a_daemon_pass(
    rucio_server: LocalRucio, rucio_admin_token: str, replicated: dict[str, Any]
) -> None:
    response = httpx.get(
        f"{rucio_server.url}/accounts/root/usage/local",
        headers={"X-Rucio-Auth-Token": rucio_admin_token},
    )
    assert response.status_code == 200
    usage = {item["rse"]: item["bytes"] for item in map(json.loads, response.text.splitlines())}
    for rse in rucio_server.rse_names:
        assert usage[rse] > 0


def test_expired_rule_is_cleaned_and_its_replica_reaped(
    rucio_server: LocalRucio, rucio_admin_token: str, replicated: dict[str, Any]
) -> None:
    rse2_prefix = rucio_server.rse_prefixes[rucio_server.rse_names[1]]
    name = replicated["names"]["dropped"]
    assert files_named(rse2_prefix, name)
    response = httpx.put(
        f"{rucio_server.url}/rules/{replicated['rules']['dropped']}",
        headers={"X-Rucio-Auth-Token": rucio_admin_token},
        json={"options": {"lifetime": 0}},
    )
    assert response.status_code == 200, response.text
    rucio_server.run_daemons_once()
    assert files_named(rse2_prefix, name) == []
    # The other file's replica on RSE 2 is untouched.
    assert files_named(rse2_prefix, replicated["names"]["kept"])


def test_rucio_caches_in_its_own_memcached_and_a_new_rse_is_found_at_once(
    rucio_server: LocalRucio, tmp_path: Path
) -> None:
    """Rucio keeps RSE lookups in the instance's memcached; adding an RSE through this package
    flushes it, so the next expression finds the new RSE (Rucio would keep the old answer for
    ten minutes). The daemons read their database, not the cache."""
    if not rucio_server.cache.available:
        pytest.skip("memcached is not installed (make cache-deps installs it)")
    assert rucio_server.cache.running
    first = rucio_server.rse_names[0]
    expression = "/rses/?expression=" + quote(f"{first}|cachetest=yes")

    def matching(admin: RucioAdmin) -> list[str]:
        answer = admin.request("GET", expression).text.splitlines()
        return sorted(json.loads(line)["rse"] for line in answer)

    with rucio_server.admin() as admin:
        before = int(rucio_server.cache.stats()["cmd_set"])
        assert matching(admin) == [first]
        assert int(rucio_server.cache.stats()["cmd_set"]) > before
        rucio_server.add_webdav_rse(
            "VRE-CACHED", "https://127.0.0.1:9/rucio/", attributes={"cachetest": "yes"}
        )
        assert matching(admin) == sorted([first, "VRE-CACHED"])
    daemons = rucio_server.daemons_config_path.read_text()
    assert str(rucio_server.cache.socket_path) not in daemons
    assert str(rucio_server.cache.socket_path) in rucio_server.config_path.read_text()


def test_the_servers_lookup_of_new_files_answers_as_rucios_own(
    rucio_server: LocalRucio, replicated: dict[str, Any]
) -> None:
    """The development server asks which files of ``POST /replicas`` are new with one query
    instead of Rucio's temporary table (scripts/wsgi.py); both answer the same, in the server's
    own environment and database: existing files, new names, and more files than the one
    query takes."""
    scripts = Path(__import__("vre_rucio_local.scripts").scripts.__file__).parent
    env = {**rucio_server.server_env(), "PYTHONPATH": str(scripts)}
    code = """
        import json, sys
        import wsgi
        from rucio.common.types import InternalScope
        from rucio.core.did import find_files_with_missing_dids as rucios
        from rucio.db.sqla.session import get_session

        params = json.loads(sys.argv[1])
        def files(names):
            return [{"scope": InternalScope(params["scope"]), "name": n} for n in names]
        def answer(find, names):
            session = get_session()()
            try:
                return sorted((f["scope"].external, f["name"], str(f["type"]))
                              for f in find(files(names), session=session))
            finally:
                session.rollback()
                session.close()
        known = list(params["known"])
        cases = [known, known + ["new-1", "new-2"], ["new-1"],
                 known + [f"many-{i}" for i in range(80)]]
        print(json.dumps([[answer(wsgi._find_files_with_missing_dids, c),
                           answer(rucios, c)] for c in cases]))
    """
    completed = subprocess.run(
        [str(rucio_server.venv_dir / "bin" / "python"), "-c", textwrap.dedent(code),
         json.dumps({"scope": SCOPE, "known": sorted(replicated["names"].values())})],
        capture_output=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    answers = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    for ours, rucios in answers:
        assert ours == rucios
    assert answers[0][0] == []  # the replicated files exist
    assert [name for _, name, _ in answers[1][0]] == ["new-1", "new-2"]
    assert len(answers[3][0]) == 80  # past the one query: Rucio's own way


def test_outage_and_restart_on_the_same_port(rucio_server: LocalRucio) -> None:
    url = rucio_server.url
    with rucio_server.outage():
        assert not rucio_server.is_running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/ping", timeout=2)
    assert rucio_server.url == url
    assert httpx.get(f"{url}/ping").json() == {"version": "41.5.1"}


def test_daemon_loop_is_restarted_when_it_dies(rucio_server: LocalRucio) -> None:
    daemons = rucio_server.daemons
    daemons.start()
    try:
        first = daemons.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and daemons.pid in (None, first):
            time.sleep(0.1)
        assert daemons.pid not in (None, first)
        assert daemons.restarts == 1
        daemons.trigger()
    finally:
        daemons.stop()
    assert not daemons.running


def test_copy_file_between_folders_checks_checksums(tmp_path: Path) -> None:
    source = tmp_path / "a" / "source.dat"
    source.parent.mkdir()
    source.write_bytes(b"hello rucio")
    target = tmp_path / "b" / "c" / "target.dat"
    copy_file(source.as_uri(), target.as_uri(), size=11, adler32="19e20457")
    assert target.read_bytes() == b"hello rucio"
    with pytest.raises(TransferCopyError, match="adler32 mismatch"):
        copy_file(source.as_uri(), (tmp_path / "bad.dat").as_uri(), adler32="00000001")
    assert not (tmp_path / "bad.dat").exists()


def test_postgresql_server_starts_with_rses(rucio_server_pg: LocalRucio) -> None:
    assert rucio_server_pg.database_url.startswith("postgresql+psycopg://")
    assert httpx.get(f"{rucio_server_pg.url}/ping").json() == {"version": "41.5.1"}
    with rucio_server_pg.admin() as admin:
        assert set(rucio_server_pg.rse_names) <= set(admin.list_rses())


@contextlib.contextmanager
def serve_webdav(root: Path, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """A WsgiDAV server on ``root`` under cheroot in a thread; yields its base URL.

    Plain WsgiDAV, without the parent-folder middleware: PUT under a missing folder is 409.
    """
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter
    from wsgidav.wsgidav_app import WsgiDAVApp

    app = WsgiDAVApp(
        {
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": {"*": True}},
            "verbose": 0,
            "logging": {"enable": False},
        }
    )
    server = wsgi.Server(("127.0.0.1", 0), app)
    if tls is not None:
        server.ssl_adapter = BuiltinSSLAdapter(str(tls[0]), str(tls[1]))
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.bind_addr[1]}"
    finally:
        server.stop()
        thread.join(timeout=5)


@pytest.fixture
def webdav_url(tmp_path: Path) -> Iterator[str]:
    """A plain-http WebDAV server on a free port."""
    root = tmp_path / "dav"
    root.mkdir()
    with serve_webdav(root) as url:
        yield url


def test_copy_file_streams_to_and_from_webdav(tmp_path: Path, webdav_url: str) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "source.dat"
    source.write_bytes(payload)
    remote = f"{webdav_url}/rucio/ab/cd/file.dat"  # parent folders do not exist yet
    copy_file(source.as_uri(), remote, size=len(payload))
    back = tmp_path / "back" / "file.dat"
    copy_file(remote, back.as_uri(), size=len(payload))
    assert back.read_bytes() == payload
    with pytest.raises(TransferCopyError, match="adler32 mismatch"):
        copy_file(source.as_uri(), f"{webdav_url}/rucio/bad.dat", adler32="00000001")
    assert httpx.get(f"{webdav_url}/rucio/bad.dat").status_code == 404


def _self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.slow  # a third server (≈ 6 s): the others share one session server
def test_rules_move_files_between_posix_and_webdav_rses(tmp_path: Path) -> None:
    # A server of its own: the WebDAV RSE dies with this test and must not outlive it in
    # the shared session server; its daemons must trust the WebDAV server's certificate.
    cert, key = _self_signed_cert(tmp_path)
    root = tmp_path / "dav"
    (root / "rucio").mkdir(parents=True)
    config = LocalRucioConfig(
        data_dir=tmp_path / "rucio",
        admin_password="dav-test-password",
        extra_env={"REQUESTS_CA_BUNDLE": str(cert)},
    )
    with serve_webdav(root, (cert, key)) as dav_url, LocalRucio(config) as rucio:
        rucio.add_webdav_rse("VRE-DAV", f"{dav_url}/rucio/")
        client_config = rucio.write_client_config()
        name = f"dav-{os.urandom(4).hex()}.dat"
        payload = os.urandom(256 * 1024)
        (tmp_path / name).write_bytes(payload)
        rse1, rse2 = rucio.rse_names
        to_dav = run_rucio_client(
            client_config,
            """
            from rucio.client import Client
            from rucio.client.uploadclient import UploadClient

            client = Client()
            client.add_scope("root", params["scope"])
            UploadClient(client).upload(
                [{"path": params["path"], "rse": params["rse1"], "did_scope": params["scope"]}]
            )
            did = [{"scope": params["scope"], "name": params["name"]}]
            print(json.dumps(client.add_replication_rule(did, 1, "VRE-DAV")[0]))
            """,
            scope=SCOPE,
            path=str(tmp_path / name),
            name=name,
            rse1=rse1,
        )
        rucio.run_daemons_once()
        (on_dav,) = files_named(root, name)
        assert on_dav.read_bytes() == payload
        from_dav = run_rucio_client(
            client_config,
            """
            from rucio.client import Client
            did = [{"scope": params["scope"], "name": params["name"]}]
            print(json.dumps(Client().add_replication_rule(
                did, 1, params["rse2"], source_replica_expression="VRE-DAV"
            )[0]))
            """,
            scope=SCOPE,
            name=name,
            rse2=rse2,
        )
        rucio.run_daemons_once()
        (on_rse2,) = files_named(rucio.rse_prefixes[rse2], name)
        assert on_rse2.read_bytes() == payload
        with rucio.admin() as admin:
            for rule in (to_dav, from_dav):
                assert admin.request("GET", f"/rules/{rule}").json()["state"] == "OK"
