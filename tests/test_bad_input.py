"""Bad input (issue 9, Reliability 4): the running VRE refuses it with 4xx problems.

The whole VRE on a real port (the four services mounted in the gateway, a real Rucio, the
Zenodo stand-in; the fixtures of ``tests/test_fuzz.py``), with a small body limit so the
oversize cases stay quick. Covered: oversize bodies (declared and chunked), malformed
JSON/YAML, deeply nested JSON/YAML, YAML alias bombs, Unicode and control characters in names,
very long query strings, path traversal wherever a path or name is accepted (DID names,
workflow output paths in specs, output downloads), CR/LF in names that end up in
Content-Disposition, and tokens in the query string (400, and no log line carries them).

Requests whose target must reach the server byte for byte (``..`` segments, ``%2e%2e``) are
sent with httpcore's ``target`` extension: httpx would otherwise normalise them away.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.test_fuzz import vre, zenodo_standin  # noqa: F401 (fixtures)
from vre_common.testing import TestIssuer

PROBLEM = "application/problem+json"
BODY_LIMIT = 10 << 20  # the gateway's default max_body_bytes


@pytest.fixture(scope="module")
def url(vre: tuple[str, TestIssuer]) -> str:  # noqa: F811
    return vre[0]


@pytest.fixture(scope="module")
def issuer(vre: tuple[str, TestIssuer]) -> TestIssuer:  # noqa: F811
    return vre[1]


@pytest.fixture(scope="module")
def alice(issuer: TestIssuer) -> dict[str, str]:
    return issuer.headers("alice")


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client


def assert_problem(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A 4xx (one of ``statuses`` if given) answered as an RFC 9457 problem document."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text[:500])
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM, (response.status_code, media, response.text[:300])
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code, body
    assert "/problems/" in body["type"], body  # resolves to the problem type's page
    assert body["title"], body
    return body


def raw(
    http: httpx.Client, method: str, target: str, headers: dict[str, str], **kw: Any
) -> httpx.Response:
    """Send ``target`` as the request line's path verbatim (no dot-segment normalisation)."""
    return http.request(
        method, "/", headers=headers, extensions={"target": target.encode("ascii")}, **kw
    )


@pytest.fixture(scope="module")
def scope(url: str, alice: dict[str, str]) -> str:
    """alice's own scope in the Data Lake, with one small file in it."""
    with httpx.Client(base_url=url, timeout=60) as http:
        mine = http.get("/datalake/scopes/mine", headers=alice)
        assert mine.status_code == 200, mine.text
        name: str = mine.json()["scope"]
        up = http.put(f"/datalake/files/{name}/bad-input/ok.txt", content=b"ok\n", headers=alice)
        assert up.status_code in (200, 201), up.text
        return name


@pytest.fixture(scope="module")
def finished_run(url: str, alice: dict[str, str]) -> str:
    """A finished run of alice's with one output file (``out/result.txt``)."""
    spec = {
        "version": "0.9.4",
        "inputs": {"parameters": {}},
        "workflow": {
            "type": "serial",
            "specification": {
                "steps": [
                    {
                        "name": "write",
                        "environment": "docker.io/library/debian:bookworm-slim",
                        "commands": ["mkdir -p out && echo 42 > out/result.txt"],
                    }
                ]
            },
        },
        "outputs": {"files": ["out/result.txt"]},
    }
    with httpx.Client(base_url=url, timeout=60) as http:
        created = http.post(
            "/workflows/runs", json={"spec": spec, "name": "bad-input"}, headers=alice
        )
        assert created.status_code == 201, created.text
        run_id: str = created.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            run = http.get(f"/workflows/runs/{run_id}", headers=alice).json()
            if run["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, run
            time.sleep(0.3)
        assert run["status"] == "finished", run.get("error")
        ok = http.get(f"/workflows/runs/{run_id}/outputs/out/result.txt", headers=alice)
        assert ok.status_code == 200, ok.text
        assert ok.content == b"42\n", ok.text
        return run_id


# ---------------------------------------------------------------------------- oversize bodies


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/projects"),  # the gateway's own route
        ("POST", "/catalogue/software"),  # a mounted service
        ("POST", "/zenodo/depositions"),
        ("POST", "/datalake/resolve"),
    ],
)
def test_oversize_body_declared(
    http: httpx.Client, alice: dict[str, str], method: str, path: str
) -> None:
    body = b'{"name": "' + b"x" * (BODY_LIMIT + 1) + b'"}'
    response = http.request(
        method, path, content=body, headers={**alice, "Content-Type": "application/json"}
    )
    assert_problem(response, 413)


@pytest.mark.parametrize("path", ["/projects", "/catalogue/software", "/zenodo/depositions"])
def test_oversize_body_chunked(http: httpx.Client, alice: dict[str, str], path: str) -> None:
    """No Content-Length: the limit is enforced while the body streams in."""

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(BODY_LIMIT // (1 << 20) + 2):
            yield b"x" * (1 << 20)
        yield b'"}'

    response = http.post(
        path, content=chunks(), headers={**alice, "Content-Type": "application/json"}
    )
    assert_problem(response, 413)


def test_oversize_spec(http: httpx.Client, alice: dict[str, str]) -> None:
    """The reana.yaml endpoints have their own (smaller) limit."""
    spec = b"version: 0.9.4\n# " + b"x" * (BODY_LIMIT - 100) + b"\n"
    response = http.post(
        "/workflows/validate", content=spec, headers={**alice, "Content-Type": "application/yaml"}
    )
    assert_problem(response, 413)


# ------------------------------------------------------------------------ malformed documents


@pytest.mark.parametrize(
    "path", ["/projects", "/catalogue/software", "/datalake/resolve", "/zenodo/depositions"]
)
@pytest.mark.parametrize(
    "body",
    [b"{", b'{"name": ', b"\xff\xfe\x00", b'{"a": 1,}', b"[1, 2", b"NaN", b'"unterminated'],
    ids=["open", "truncated", "binary", "trailing-comma", "open-list", "nan", "string"],
)
def test_malformed_json(http: httpx.Client, alice: dict[str, str], path: str, body: bytes) -> None:
    response = http.post(path, content=body, headers={**alice, "Content-Type": "application/json"})
    assert_problem(response, 400, 422)


@pytest.mark.parametrize(
    "text",
    [
        "version: [0.9.4\n",
        "a: b: c\n",
        "key: 'unterminated\n",
        "a: 1\na: 2\n",  # duplicate key
        "- just\n- a list\n",
        "\t- tab\n",
        "!!python/object/apply:os.system ['true']\n",
        "d: 2024-01-01\nversion: 0.9.4\n",  # a YAML-only type (date)
        "b: !!binary aGVsbG8=\n",
        "a: &a [*a]\n",  # a self-referencing alias
    ],
)
@pytest.mark.parametrize("endpoint", ["/workflows/validate", "/workflows/runs"])
def test_malformed_yaml(
    http: httpx.Client, alice: dict[str, str], text: str, endpoint: str
) -> None:
    if endpoint == "/workflows/runs":
        response = http.post(
            endpoint,
            files={"spec": ("reana.yaml", text.encode(), "application/yaml")},
            headers=alice,
        )
    else:
        response = http.post(
            endpoint, content=text.encode(), headers={**alice, "Content-Type": "application/yaml"}
        )
    assert_problem(response, 400, 422)


def test_json_with_lone_surrogates(http: httpx.Client, alice: dict[str, str]) -> None:
    """Valid JSON escapes that are not valid Unicode (found by the fuzzer: was a 500)."""
    body = b'{"version": "0.9.4", "x\\udbf2": "\\ud800"}'
    for path in ("/workflows/validate", "/projects", "/catalogue/software"):
        response = http.post(
            path, content=body, headers={**alice, "Content-Type": "application/json"}
        )
        assert_problem(response, 400, 422)


def test_yaml_alias_bomb(http: httpx.Client, alice: dict[str, str]) -> None:
    """A 'billion laughs' document: refused quickly, not expanded."""
    lines = ['a0: ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: [{','.join([f'*a{i - 1}'] * 9)}]")
    text = "version: 0.9.4\n" + "\n".join(lines) + "\n"
    started = time.monotonic()
    response = http.post(
        "/workflows/validate",
        content=text.encode(),
        headers={**alice, "Content-Type": "application/yaml"},
        timeout=30,
    )
    assert_problem(response, 400, 413, 422)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize(
    "path", ["/projects", "/catalogue/software", "/workflows/validate", "/provenance/events"]
)
def test_deeply_nested_json(
    http: httpx.Client, alice: dict[str, str], path: str, depth: int
) -> None:
    body = b'{"a": ' * depth + b"1" + b"}" * depth
    response = http.post(path, content=body, headers={**alice, "Content-Type": "application/json"})
    assert_problem(response)


@pytest.mark.parametrize("depth", [1_000, 50_000])
def test_deeply_nested_yaml(http: httpx.Client, alice: dict[str, str], depth: int) -> None:
    text = "[" * depth + "]" * depth
    response = http.post(
        "/workflows/validate",
        content=text.encode(),
        headers={**alice, "Content-Type": "application/yaml"},
    )
    assert_problem(response)


# ------------------------------------------------------------------------------ names


BAD_NAMES = [
    "caf\u00e9.txt",  # non-ASCII letter
    "a\u202etxt.exe",  # right-to-left override
    "zero\u200bwidth.txt",  # zero-width space
    "nul\x00byte.txt",
    "bell\x07.txt",
    "tab\tname.txt",
    "new\nline.txt",
    "carriage\rreturn.txt",
    "emoji\U0001f600.txt",
    "line\u2028sep.txt",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[1:-1][:24])
def test_unicode_and_control_characters_in_did_names(
    http: httpx.Client, alice: dict[str, str], scope: str, name: str
) -> None:
    # 422 from the name check, or 404 where the router's path pattern already refuses a
    # line break: either way a problem, and nothing registered.
    up = raw(http, "PUT", f"/datalake/files/{scope}/{_pct(name)}", alice, content=b"x")
    assert_problem(up, 404, 422)
    for prefix in ("/datalake/files/", "/datalake/dids/"):
        got = raw(http, "GET", f"{prefix}{scope}/{_pct(name)}", alice)
        assert_problem(got, 404, 422)


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[1:-1][:24])
def test_unicode_and_control_characters_in_other_names(
    http: httpx.Client, alice: dict[str, str], name: str
) -> None:
    # A project slug, in the body and in the path.
    created = http.post("/projects", json={"name": "x", "slug": name}, headers=alice)
    assert_problem(created, 422)
    got = raw(http, "GET", f"/projects/{_pct(name)}", alice)
    assert_problem(got, 404, 422)
    # A scope to create, a DID in a JSON body.
    scope = http.post("/datalake/scopes", json={"scope": name}, headers=alice)
    assert_problem(scope, 403, 422)
    resolve = http.post("/datalake/resolve", json={"dids": [f"user.alice:{name}"]}, headers=alice)
    assert_problem(resolve, 422)


def _pct(text: str) -> str:
    """Percent-encode every byte that is not unreserved (so control bytes reach the server)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if ch.isascii() and (ch.isalnum() or ch in "-._~/") else f"%{byte:02X}")
    return "".join(out)


# ------------------------------------------------------------------------ long query strings


@pytest.mark.parametrize(
    "path",
    ["/projects", "/search", "/catalogue/harvest", "/workflows/runs", "/datalake/rules"],
)
@pytest.mark.parametrize("size", [30_000])
def test_very_long_query_strings(
    http: httpx.Client, alice: dict[str, str], path: str, size: int
) -> None:
    response = http.get(path, params={"q": "a" * size}, headers=alice)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if response.headers.get("content-type", "").startswith(("application/", "text/html")):
        # Answered by the app (not refused by the HTTP server's request-line limit).
        assert_problem(response)


# ---------------------------------------------------------------------------- path traversal


TRAVERSALS = [
    "../../../../etc/passwd",
    "x/../../../etc/passwd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "..%5c..%5cetc%5cpasswd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "./././etc/passwd",
    "a/./b",
    "a//b",
    "..",
    ".",
    "%00/etc/passwd",
]


def _leaks(response: httpx.Response) -> bool:
    return b"root:" in response.content or b"/bin/" in response.content


@pytest.mark.parametrize("bad", TRAVERSALS)
@pytest.mark.parametrize(
    ("method", "prefix"),
    [
        ("PUT", "/datalake/files/{scope}/"),
        ("GET", "/datalake/files/{scope}/"),
        ("GET", "/datalake/dids/{scope}/"),
        ("GET", "/datalake/dids/{scope}/bad-input/{bad}/content"),
    ],
)
def test_path_traversal_in_did_names(
    http: httpx.Client, alice: dict[str, str], scope: str, method: str, prefix: str, bad: str
) -> None:
    target = (prefix + ("" if "{bad}" in prefix else "{bad}")).format(scope=scope, bad=bad)
    response = raw(http, method, target, alice, content=b"x" if method == "PUT" else None)
    assert 400 <= response.status_code < 500, (target, response.status_code, response.text)
    assert not _leaks(response)
    if response.status_code != 404:  # a 404 may come from the router: still a problem
        assert_problem(response)
    else:
        assert_problem(response, 404)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "a/../../b", ".."])
def test_path_traversal_in_did_bodies(
    http: httpx.Client, alice: dict[str, str], scope: str, bad: str
) -> None:
    for body in (
        {"dids": [f"{scope}:{bad}"]},
        {"dids": [{"scope": scope, "name": bad}]},
    ):
        response = http.post("/datalake/resolve", json=body, headers=alice)
        assert_problem(response, 422)


@pytest.mark.parametrize(
    "bad",
    [
        "../escape.txt",
        "../../etc/passwd",
        "/etc/passwd",
        "a/../../b.txt",
        "~/x.txt",
        "a\r\nX-Injected: 1",
        "nul\x00.txt",
    ],
)
def test_path_traversal_in_workflow_specs(
    http: httpx.Client, alice: dict[str, str], bad: str
) -> None:
    spec = {
        "version": "0.9.4",
        "inputs": {"parameters": {}, "files": [bad]},
        "workflow": {
            "type": "serial",
            "specification": {
                "steps": [{"environment": "debian:bookworm-slim", "commands": ["true"]}]
            },
        },
        "outputs": {"files": [bad]},
    }
    validated = http.post("/workflows/validate", json=spec, headers=alice)
    assert_problem(validated, 422)
    submitted = http.post("/workflows/runs", json={"spec": spec}, headers=alice)
    assert_problem(submitted, 422)
    # The run's inputs name workspace paths too.
    good = {**spec, "inputs": {"parameters": {}}, "outputs": {"files": ["ok.txt"]}}
    placed = http.post(
        "/workflows/runs",
        json={"spec": good, "inputs": [{"kind": "inline", "path": bad, "content": "x"}]},
        headers=alice,
    )
    assert_problem(placed, 422)


@pytest.mark.parametrize("bad", [*TRAVERSALS, "out/../../../../etc/passwd", "out%2f..%2f..%2fx"])
def test_path_traversal_in_output_downloads(
    http: httpx.Client, alice: dict[str, str], finished_run: str, bad: str
) -> None:
    response = raw(http, "GET", f"/workflows/runs/{finished_run}/outputs/{bad}", alice)
    assert 400 <= response.status_code < 500, (bad, response.status_code, response.text)
    assert not _leaks(response)
    assert_problem(response)


# ------------------------------------------------------------------ Content-Disposition injection


@pytest.mark.parametrize(
    "evil", ["a\r\nX-Injected: 1", "a%0d%0aX-Injected:%201", "a\rb", 'q"uote.txt', "a\nb.txt"]
)
def test_header_injection_in_filenames(
    http: httpx.Client, alice: dict[str, str], scope: str, finished_run: str, evil: str
) -> None:
    name = _pct(evil) if "%" not in evil else evil
    # Such a name cannot be registered in the Data Lake...
    up = raw(http, "PUT", f"/datalake/files/{scope}/bad-input/{name}", alice, content=b"x")
    assert_problem(up, 404, 422)
    # ...nor requested, from the Data Lake or from a run's outputs.
    for target in (
        f"/datalake/files/{scope}/bad-input/{name}",
        f"/datalake/dids/{scope}/bad-input/{name}/archive",
        f"/workflows/runs/{finished_run}/outputs/{name}",
    ):
        response = raw(http, "GET", target, alice)
        assert 400 <= response.status_code < 500, (target, response.status_code)
        assert "x-injected" not in response.headers
        assert "\r" not in response.headers.get("content-disposition", "")
        assert "\n" not in response.headers.get("content-disposition", "")


def test_content_disposition_is_safely_encoded(
    http: httpx.Client, alice: dict[str, str], scope: str, finished_run: str
) -> None:
    """The filenames that can exist are sent as one quoted token (no header splitting)."""
    for target in (
        f"/datalake/files/{scope}/bad-input/ok.txt",
        f"/workflows/runs/{finished_run}/outputs/out/result.txt",
    ):
        response = http.get(target, headers=alice)
        assert response.status_code == 200, response.text
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment;"), disposition
        assert all(0x20 <= ord(c) < 0x7F for c in disposition), disposition


# ------------------------------------------------------------------ tokens in the query string


@pytest.mark.parametrize(
    "path",
    [
        "/me",
        "/projects",
        "/datalake/rses",
        "/datalake/scopes/mine",
        "/workflows/runs",
        "/catalogue/harvest",
        "/zenodo/credentials",
    ],
)
@pytest.mark.parametrize("with_header", [False, True], ids=["query-only", "query-and-header"])
def test_token_in_query_string_is_refused_and_never_logged(
    http: httpx.Client,
    issuer: TestIssuer,
    path: str,
    with_header: bool,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = issuer.token("alice", jti=uuid.uuid4().hex)
    signature = token.rsplit(".", 1)[-1]
    headers = {"Authorization": f"Bearer {token}"} if with_header else {}
    with caplog.at_level(logging.DEBUG):
        response = http.get(path, params={"access_token": token}, headers=headers)
        # Also an invalid one, and one in an odd header: validation failures are logged paths.
        bad = http.get(path, params={"access_token": token + "x"}, headers={"X-Token": token})
        time.sleep(0.2)  # let the server thread's log lines land
    body = assert_problem(response, 400)
    assert "Authorization header" in (body.get("detail") or ""), body
    assert 400 <= bad.status_code < 500
    out, err = capfd.readouterr()
    for where, text in (("stdout", out), ("stderr", err)):
        assert signature not in text, f"a token reached {where}"
    for record in caplog.records:
        assert signature not in record.getMessage(), record.getMessage()
        assert signature not in str(record.__dict__), record.__dict__


def test_token_in_query_string_with_invalid_header(
    http: httpx.Client, issuer: TestIssuer, capfd: pytest.CaptureFixture[str]
) -> None:
    token = issuer.token("alice")
    response = http.get(
        "/projects", params={"token": token}, headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert_problem(response, 400, 401)
    out, err = capfd.readouterr()
    assert token.rsplit(".", 1)[-1] not in out + err


# --------------------------------------------------------- problems a person can act on (19)


def test_json_syntax_errors_say_line_column_and_reason(
    http: httpx.Client, alice: dict[str, str]
) -> None:
    """A codemeta.json with a missing comma on line 3 (as a person writes one)."""
    body = b'{\n  "name": "gammapy",\n  "version": "1.2"\n  "description": "x"\n}\n'
    for path in ("/catalogue/software", "/projects", "/zenodo/depositions"):
        response = http.post(
            path, content=body, headers={**alice, "Content-Type": "application/json"}
        )
        problem = assert_problem(response, 400)
        assert (problem["line"], problem["column"]) == (4, 3), problem
        assert problem["reason"] == "Expecting ',' delimiter", problem
        assert "line 4, column 3" in problem["detail"]
        page = http.get(problem["type"], headers={"Accept": "application/json"})
        assert page.status_code == 200, problem["type"]
        assert page.json()["type"] == "malformed-body"


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        (b"\n", 2, 1),  # the fuzzer's body: the error is past the last line break
        (b'{\n  "name": "x",\n', 3, 1),
        ('{"name": "a\u2028b",\n\x0b}'.encode(), 2, 1),  # breaks only JSON's own "\n" counts
    ],
)
def test_json_errors_past_the_last_line_break(
    http: httpx.Client, alice: dict[str, str], body: bytes, line: int, column: int
) -> None:
    response = http.post(
        "/projects/lab/invitations",
        content=body,
        headers={**alice, "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 400)
    assert (problem["line"], problem["column"]) == (line, column), problem


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/catalogue/software", "application/yaml", b"name: gammapy\nversion: '1.2'\n"),
        ("/projects", "multipart/form-data; boundary=x", b"--x\r\n\r\nname\r\n--x--\r\n"),
        ("/datalake/rules", "text/plain", b'{"dids": ["user.alice:x"]}'),
        ("/zenodo/imports", "application/x-www-form-urlencoded", b"doi=10.5281/zenodo.1"),
    ],
)
def test_other_media_types_on_json_routes_are_415(
    http: httpx.Client, alice: dict[str, str], path: str, content_type: str, body: bytes
) -> None:
    response = http.post(path, content=body, headers={**alice, "Content-Type": content_type})
    problem = assert_problem(response, 415)
    assert problem["accepted"] == ["application/json"]
    assert response.headers["accept-post"] == "application/json"


def test_a_boolean_is_no_lifetime(http: httpx.Client, alice: dict[str, str], scope: str) -> None:
    """PATCH /datalake/rules/{id} with {"lifetime": false} was a rule expiring now."""
    made = http.post(
        "/datalake/rules",
        json={"dids": [f"{scope}:bad-input/ok.txt"], "rse_expression": "VRE-DISK-2"},
        headers=alice,
    )
    assert made.status_code == 201, made.text
    rule = made.json()["ids"][0]
    try:
        for bad in (False, True, 1.5, "3600", 0):
            response = http.patch(f"/datalake/rules/{rule}", json={"lifetime": bad}, headers=alice)
            problem = assert_problem(response, 422)
            assert problem["errors"][0]["loc"] == ["body", "lifetime"], problem
        assert http.get(f"/datalake/rules/{rule}", headers=alice).json()["expires_at"] is None
    finally:
        http.delete(f"/datalake/rules/{rule}", headers=alice)


def test_a_shadowed_route_answers_405_with_every_method_of_the_path(
    http: httpx.Client, alice: dict[str, str]
) -> None:
    response = http.patch("/catalogue/software/search", json={}, headers=alice)
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD"
    # A path with several routes: every method of every route is allowed.
    response = http.put("/datalake/rules", headers=alice)
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"


def test_a_short_token_is_counted_in_characters(http: httpx.Client, alice: dict[str, str]) -> None:
    response = http.put("/zenodo/credentials", json={"token": "secret"}, headers=alice)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["msg"] == "should have at least 8 characters (6 given)"


@pytest.mark.parametrize(
    "path",
    [
        "/projects?offset=673092130273423400108032",  # the fuzzer's: a bigint overflow, a 500
        "/workflows/runs?page=99999999999999999999",
        "/projects/lab/audit?before=9223372036854775808",
    ],
)
def test_offsets_beyond_any_list_are_refused(
    http: httpx.Client, alice: dict[str, str], path: str
) -> None:
    problem = assert_problem(http.get(path, headers=alice), 422)
    assert "less than or equal to 2147483647" in problem["errors"][0]["msg"], problem
