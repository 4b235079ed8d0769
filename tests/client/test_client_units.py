"""The client's own rules, at the transport seam (httpx.MockTransport): token discovery and
re-reading, the 401 retry, the token kept to the VRE's origin, problems as exceptions, range
reads, checksum checks and resumed downloads."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import vre
from vre import config, errors
from vre.cli import exit_code

URL = "http://vre.test"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: object) -> vre.Client:
    return vre.Client(URL, transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No token in the environment; the runtime folder and uid point into tmp_path."""
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "VRE_URL", "VRE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    # /tmp/bt_u<uid> is the last place discovery looks: an uid nobody has keeps it empty
    monkeypatch.setattr(config, "_uid", lambda: 4_000_000_000 + os.getpid())
    return runtime


# -- token discovery ------------------------------------------------------------------------


def test_discovery_order_and_whitespace(clean_env: Path, tmp_path: Path) -> None:
    uid = config._uid()
    runtime_file = clean_env / f"bt_u{uid}"
    named = tmp_path / "named"
    env: dict[str, str] = {"XDG_RUNTIME_DIR": str(clean_env)}
    assert config.discover_token(env) is None
    runtime_file.write_text("  from-runtime\n")
    assert config.discover_token(env) == "from-runtime"
    named.write_text("from-file\n\n")
    env["BEARER_TOKEN_FILE"] = str(named)
    assert config.discover_token(env) == "from-file"
    env["BEARER_TOKEN"] = "  \t "  # empty after stripping: go on to the next source
    assert config.discover_token(env) == "from-file"
    env["BEARER_TOKEN"] = " direct \n"
    assert config.discover_token(env) == "direct"
    named.write_text("   ")  # an empty file also means "next"
    del env["BEARER_TOKEN"]
    assert config.discover_token(env) == "from-runtime"


def test_tmp_location_is_last(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_file = Path(f"/tmp/bt_u{config._uid()}")
    tmp_file.write_text("from-tmp\n")
    try:
        assert config.discover_token({}) == "from-tmp"
        assert config.token_file_path({}) == tmp_file
    finally:
        tmp_file.unlink()


def test_write_token_file_is_atomic_and_private(clean_env: Path) -> None:
    target = config.token_file_path()
    assert target == clean_env / f"bt_u{config._uid()}"
    config.write_token_file("first\n")
    inode = target.stat().st_ino
    config.write_token_file("second")
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != inode  # replaced, never rewritten in place
    assert [p.name for p in clean_env.iterdir()] == [target.name]  # no temporary left


def test_url_from_environment_config_file_or_default(clean_env: Path, tmp_path: Path) -> None:
    assert config.vre_url() == config.DEFAULT_URL
    cfg = tmp_path / "config" / "vre" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('url = "https://vre.example.org/"\n')
    assert config.vre_url() == "https://vre.example.org"
    assert config.vre_url({"VRE_URL": "http://127.0.0.1:9", "VRE_CONFIG": str(cfg)}) == (
        "http://127.0.0.1:9"
    )
    cfg.write_text("url = [broken")
    with pytest.raises(errors.ConfigError, match=r"config\.toml"):
        config.vre_url()
    with pytest.raises(errors.ConfigError, match="http"):
        config.vre_url({"VRE_URL": "ftp://x"})


def test_token_file_is_read_again_before_each_request(clean_env: Path) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"username": "alice"})

    config.write_token_file("one")
    with client(handler) as c:
        c.me()
        config.write_token_file("two")  # a refresher replaced the file
        c.me()
    assert seen == ["Bearer one", "Bearer two"]


def test_one_retry_after_401_with_the_file_read_again(clean_env: Path) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization")
        seen.append(token)
        if token == "Bearer stale":
            config.write_token_file("fresh")  # refreshed while the request was in flight
            return httpx.Response(401, json={"title": "Unauthorized", "status": 401})
        return httpx.Response(200, json={"username": "alice"})

    config.write_token_file("stale")
    with client(handler) as c:
        assert c.me() == {"username": "alice"}
    assert seen == ["Bearer stale", "Bearer fresh"]


def test_a_401_with_no_new_token_is_not_retried(clean_env: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            401,
            json={"type": "about:blank", "title": "Unauthorized", "status": 401,
                  "detail": "token expired", "request_id": "r-1"},
        )  # fmt: skip

    config.write_token_file("expired")
    with client(handler) as c, pytest.raises(errors.UnauthorizedError) as caught:
        c.me()
    assert len(calls) == 1
    assert caught.value.detail == "token expired"
    assert caught.value.request_id == "r-1"
    assert exit_code(caught.value) == 3


def test_explicit_token_overrides_discovery(clean_env: Path) -> None:
    config.write_token_file("discovered")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={})

    with client(handler, token="given\n") as c:
        c.me()
    assert seen == ["Bearer given"]


def test_the_token_goes_only_to_the_vres_origin(clean_env: Path) -> None:
    config.write_token_file("secret")
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request.headers.get("authorization")
        if request.url.host == "vre.test":
            return httpx.Response(307, headers={"Location": "http://elsewhere.test/file"})
        return httpx.Response(200, content=b"bytes")

    with client(handler) as c:
        c.session.request("GET", "/datalake/files/user.alice/f")
        c.session.http.get("http://vre.test:8443/x")  # another port is another origin
    assert seen["http://vre.test/datalake/files/user.alice/f"] == "Bearer secret"
    assert seen["http://elsewhere.test/file"] is None
    assert seen["http://vre.test:8443/x"] is None


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (404, errors.NotFoundError, 4),
        (403, errors.ForbiddenError, 4),
        (409, errors.ConflictError, 5),
        (422, errors.UnprocessableError, 5),
        (503, errors.ServerError, 6),
    ],
)
def test_problems_become_exceptions(status: int, kind: type, code: int) -> None:
    problem = {
        "type": "https://vre.example/problems/x",
        "title": "Something",
        "status": status,
        "detail": "what went wrong",
        "request_id": "abc",
        "errors": [{"loc": ["body", "name"], "msg": "bad"}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json=problem, headers={"content-type": "application/problem+json"}
        )

    with client(handler, token="t") as c, pytest.raises(kind) as caught:
        c.projects.get("x")
    assert isinstance(caught.value, errors.ApiError)
    assert (caught.value.status, caught.value.title, caught.value.detail) == (
        status,
        "Something",
        "what went wrong",
    )
    assert caught.value.request_id == "abc"
    assert caught.value.errors == problem["errors"]
    assert "abc" in str(caught.value)
    assert exit_code(caught.value) == code


def test_a_non_json_gateway_error_is_a_server_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>", headers={"x-request-id": "q"})

    with client(handler, token="t") as c, pytest.raises(errors.ServerError) as caught:
        c.me()
    assert caught.value.status == 502
    assert caught.value.request_id == "q"


def test_unreachable_vre_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with client(handler, token="t") as c, pytest.raises(errors.TransportError, match="refused"):
        c.me()


# -- bytes ----------------------------------------------------------------------------------

BLOB = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes


def adler(data: bytes) -> str:
    return f"{zlib.adler32(data) & 0xFFFFFFFF:08x}"


class FileServer:
    """A file of the Data Lake: DID answer, ranged GETs, PUT answering chosen checksums."""

    def __init__(self, data: bytes = BLOB) -> None:
        self.data = data
        self.ranges: list[str | None] = []
        self.put_headers: httpx.Headers | None = None
        self.put_body = b""
        self.answer_md5: str | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/datalake/dids/"):
            return httpx.Response(
                200,
                json={"scope": "user.alice", "name": "dir/f.bin", "type": "FILE",
                      "bytes": len(self.data), "adler32": adler(self.data),
                      "md5": hashlib.md5(self.data).hexdigest(), "metadata": {}},
            )  # fmt: skip
        if request.method == "PUT":
            self.put_headers = request.headers
            self.put_body = request.read()
            return httpx.Response(
                201,
                json={"scope": "user.alice", "name": "dir/f.bin", "bytes": len(self.put_body),
                      "adler32": adler(self.put_body),
                      "md5": self.answer_md5 or hashlib.md5(self.put_body).hexdigest(),
                      "rse": "VRE-DISK-1", "created": True},
            )  # fmt: skip
        wanted = request.headers.get("range")
        self.ranges.append(wanted)
        if not wanted:
            return httpx.Response(200, content=self.data)
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        end = int(last) if last else len(self.data) - 1
        return httpx.Response(
            206,
            content=self.data[int(first) : end + 1],
            headers={"Content-Range": f"bytes {first}-{end}/{len(self.data)}"},
        )


def test_open_reads_by_ranges_and_seeks() -> None:
    server = FileServer()
    with (
        client(server, token="t") as c,
        c.datalake.open("user.alice:dir/f.bin", block_size=4096) as f,
    ):
        assert f.read(10) == BLOB[:10]
        f.seek(-4, os.SEEK_END)
        assert f.read() == b"tail"
        f.seek(300_000)
        assert f.read(5) == BLOB[300_000:300_005]
    assert len(server.ranges) == 3  # three small reads: three ranges, not the whole file
    assert all(r and r.startswith("bytes=") for r in server.ranges)


def test_upload_sends_content_md5_and_checks_the_answer(tmp_path: Path) -> None:
    server = FileServer()
    source = tmp_path / "f.bin"
    source.write_bytes(BLOB)
    progress: list[int] = []
    with client(server, token="t") as c:
        result = c.datalake.upload(source, "user.alice:dir/f.bin", metadata={"run": 42},
                                   progress=lambda done, total: progress.append(done))  # fmt: skip
    assert server.put_body == BLOB
    assert server.put_headers is not None
    assert (
        server.put_headers["content-md5"] == base64.b64encode(hashlib.md5(BLOB).digest()).decode()
    )
    assert result.adler32 == adler(BLOB)
    assert progress[-1] == len(BLOB)
    with client(server, token="t") as c:  # progress=True: a rich bar, same transfer
        assert c.datalake.upload(source, "user.alice:dir/f.bin", progress=True).bytes == len(BLOB)
    server.answer_md5 = "0" * 32  # the VRE recorded something else
    with client(server, token="t") as c, pytest.raises(errors.ChecksumMismatchError):
        c.datalake.upload(b"other bytes", "user.alice:dir/f.bin")


def test_download_resumes_a_partial_file_and_verifies(tmp_path: Path) -> None:
    server = FileServer()
    (tmp_path / "f.bin.part").write_bytes(BLOB[:500_000])
    with client(server, token="t") as c:
        path = c.datalake.download("user.alice:dir/f.bin", tmp_path)
    assert path == tmp_path / "f.bin"
    assert path.read_bytes() == BLOB
    assert server.ranges == ["bytes=500000-"]
    assert not (tmp_path / "f.bin.part").exists()


def test_a_corrupt_partial_download_is_refused_and_removed(tmp_path: Path) -> None:
    server = FileServer()
    (tmp_path / "f.bin.part").write_bytes(b"\xff" * 1000)  # not the file's first bytes
    with client(server, token="t") as c, pytest.raises(errors.ChecksumMismatchError):
        c.datalake.download("user.alice:dir/f.bin", tmp_path)
    assert not (tmp_path / "f.bin.part").exists()
    assert not (tmp_path / "f.bin").exists()
    with client(server, token="t") as c:  # the next attempt starts over and succeeds
        assert c.datalake.download("user.alice:dir/f.bin", tmp_path).read_bytes() == BLOB


def test_provenance_entity_ids() -> None:
    from vre.services import entity_id

    assert entity_id("user.alice:f.csv") == "did:user.alice:f.csv"
    assert entity_id("did:user.alice:f.csv") == "did:user.alice:f.csv"
    assert entity_id("doi:10.5281/zenodo.1") == "doi:10.5281/zenodo.1"
    assert entity_id(vre.Publication("10.5281/ZENODO.7", "d", 7, None)) == "doi:10.5281/zenodo.7"


# -- device login (RFC 8628) ----------------------------------------------------------------


def _issuer(answers: list[httpx.Response], device: bool = True) -> Handler:
    """An issuer: discovery, device authorization, then the token endpoint's ``answers``."""
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            document = {"issuer": "https://iam.test/", "token_endpoint": "https://iam.test/token"}
            if device:
                document["device_authorization_endpoint"] = "https://iam.test/devicecode"
            return httpx.Response(200, json=document)
        form = dict(httpx.QueryParams(request.content.decode()))
        seen.append(form)
        if request.url.path == "/devicecode":
            assert form == {"client_id": "vre-cli", "scope": "openid offline_access"}
            return httpx.Response(
                200,
                json={"device_code": "DC", "user_code": "ABCD-EFGH", "interval": 2,
                      "verification_uri": "https://iam.test/device", "expires_in": 600},
            )  # fmt: skip
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
        assert form["device_code"] == "DC"
        return answers.pop(0)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_device_login_polls_until_approved() -> None:
    from vre.device import device_code_token

    handler = _issuer(
        [
            httpx.Response(400, json={"error": "authorization_pending"}),
            httpx.Response(400, json={"error": "slow_down"}),
            httpx.Response(200, json={"access_token": "the-token", "token_type": "Bearer"}),
        ]
    )
    shown: list[tuple[str, str]] = []
    waits: list[float] = []
    token = device_code_token(
        "https://iam.test/", "vre-cli", notify=lambda u, c: shown.append((u, c)),
        transport=httpx.MockTransport(handler), sleep=waits.append,
    )  # fmt: skip
    assert token == "the-token"
    assert shown == [("https://iam.test/device", "ABCD-EFGH")]
    assert waits == [2, 2, 7]  # slow_down adds 5 seconds (RFC 8628 §3.5)


def test_device_login_refused_or_unavailable() -> None:
    from vre.device import DeviceFlowError, DeviceFlowUnavailableError, device_code_token

    denied = _issuer([httpx.Response(400, json={"error": "access_denied"})])
    with pytest.raises(DeviceFlowError, match="access_denied"):
        device_code_token("https://iam.test/", "vre-cli", transport=httpx.MockTransport(denied),
                          sleep=lambda _: None)  # fmt: skip
    without = _issuer([], device=False)
    with pytest.raises(DeviceFlowUnavailableError):
        device_code_token("https://iam.test/", "vre-cli", transport=httpx.MockTransport(without))


# -- IVOA: a pyvo TAPService whose session sends the token only to that service -------------


def test_tap_service_gets_the_token_only_when_asked_and_only_at_its_origin() -> None:
    import pyvo
    import requests
    from requests.adapters import BaseAdapter

    class Recorder(BaseAdapter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.seen: dict[str, str | None] = {}

        def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
            self.seen[str(request.url)] = request.headers.get("Authorization")
            response = requests.Response()
            response.status_code = 200
            response._content = b""
            response.url = str(request.url)
            return response

        def close(self) -> None:
            pass

    def vre_api(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/ivoa/services/gavo"
        return httpx.Response(
            200, json={"name": "gavo", "type": "tap", "url": "http://tap.test/tap"}
        )

    with client(vre_api, token="vre-token") as c:
        for send_token, expected in ((True, "Bearer vre-token"), (False, None)):
            tap = c.ivoa.tap("gavo", send_token=send_token)
            assert isinstance(tap, pyvo.dal.TAPService)
            assert tap.baseurl == "http://tap.test/tap"
            recorder = Recorder()
            tap._session.mount("http://", recorder)
            tap._session.get("http://tap.test/tap/sync")
            tap._session.get("http://elsewhere.test/tap/sync")
            assert recorder.seen == {
                "http://tap.test/tap/sync": expected,
                "http://elsewhere.test/tap/sync": None,
            }


# -- installable on its own -----------------------------------------------------------------


def test_the_client_needs_nothing_of_the_server() -> None:
    import subprocess
    import sys
    import tomllib

    project = tomllib.loads(
        (Path(__file__).parents[2] / "clients/python/pyproject.toml").read_text()
    )
    requires = {
        d.split(">")[0].split("=")[0].split("[")[0] for d in project["project"]["dependencies"]
    }
    assert requires == {"httpx", "typer", "rich"}
    probe = (
        "import sys, vre, vre.cli, vre.hub, vre.device, vre.config;"
        "server = {'vre_common', 'vre_gateway', 'fastapi', 'starlette', 'sqlalchemy'};"
        "extras = {'astropy', 'pyvo', 'fsspec', 'pyarrow'};"
        "print(sorted({m.split('.')[0] for m in sys.modules} & (server | extras)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"  # the extras load only when their feature is used


# -- the JupyterHub refresher ----------------------------------------------------------------


def test_refresher_writes_the_hubs_token_only_when_it_changed(tmp_path: Path) -> None:
    from vre import hub

    state: dict[str, object] = {"auth_state": {"access_token": "one"}}
    seen: list[httpx.Request] = []

    def the_hub(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "alice", **state})

    env = {"JUPYTERHUB_API_URL": "http://hub.test/hub/api", "JUPYTERHUB_API_TOKEN": "server-t",
           "JUPYTERHUB_USER": "alice"}  # fmt: skip
    target = tmp_path / "bt"
    original = httpx.Client

    def patched(*args: object, **kwargs: object) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(the_hub)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hub.httpx, "Client", patched)
        assert hub.refresh_once(target, env) is True
        inode = target.stat().st_ino
        assert hub.refresh_once(target, env) is False  # unchanged: not rewritten
        assert target.stat().st_ino == inode
        state["auth_state"] = {"access_token": "two"}
        assert hub.refresh_once(target, env) is True
        assert target.read_text() == "two\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        state["auth_state"] = None
        with pytest.raises(hub.HubTokenError, match=r"admin:auth_state!user"):
            hub.refresh_once(target, env)
    assert target.read_text() == "two\n"  # a failed check keeps the last good token
    assert seen[0].url == "http://hub.test/hub/api/users/alice"
    assert seen[0].headers["authorization"] == "token server-t"
    with pytest.raises(hub.HubTokenError, match="JUPYTERHUB_API_URL"):
        hub.fetch_access_token({})
