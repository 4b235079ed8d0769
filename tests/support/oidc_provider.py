"""A real OpenID provider for integration tests: ``tests/oidc/server.mjs`` (npm ``oidc-provider``).

Register with ``pytest_plugins = ["tests.support.oidc_provider"]`` (or ``-p
tests.support.oidc_provider``) and ask for the session fixture ``oidc_provider``::

    def test_x(oidc_provider):
        token = oidc_provider.password_token("alice", scope="openid wlcg.groups storage.read:/vre")

The provider listens on 127.0.0.1 at a free port; its issuer is ``http://127.0.0.1:<port>/``
(trailing slash, compared exactly, like IAM). Access tokens are RS256 JWTs, header
``{"alg": "RS256", "kid": ...}`` (no ``typ``, like IAM), claims ``iss sub aud exp nbf iat jti
client_id scope wlcg.ver`` plus, for users, ``preferred_username`` and — only when the scope
contains ``wlcg.groups``, as in IAM — ``wlcg.groups``.

Needs ``node`` (>= 20) and ``tests/oidc/node_modules`` (``cd tests/oidc && npm ci``); when either
is missing the fixture raises :class:`OidcProviderError` (tests error, they are not skipped).
The class :class:`OidcProvider` also works outside pytest (``with OidcProvider.start() as p:``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
SERVER_SCRIPT = OIDC_DIR / "server.mjs"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
DEFAULT_AUDIENCE = "vre"
DEFAULT_SCOPE = "openid profile wlcg.groups"
CLIENT_ID = "vre-test"
CLIENT_SECRET = "vre-test-secret"
STARTUP_TIMEOUT = 30.0  # seconds; about 1.5 s on an idle machine, much more under load
_PORT_ATTEMPTS = 3
_EXIT_ADDRESS_IN_USE = 98  # server.mjs exits with this when the port was taken meanwhile


class OidcProviderError(RuntimeError):
    """The test provider could not be started, or refused a request."""


class _NotServing(OidcProviderError):
    """The provider runs but did not listen in time (seen rarely in full runs, with nothing in
    its log but Node's runtime warning; a new start right after serves in under a second)."""


class TokenRequestError(OidcProviderError):
    """The token endpoint answered with an OAuth error (``status``, ``error``, ``description``)."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        self.status = status
        self.error = str(body.get("error", ""))
        self.description = str(body.get("error_description", ""))
        message = f"token endpoint answered {status}: {self.error} {self.description}"
        super().__init__(message.strip())


@dataclass(frozen=True)
class TestUser:
    """A user of the test provider (``sub`` is the stable subject the tokens carry)."""

    __test__ = False  # not a pytest class

    username: str
    sub: str
    password: str
    name: str
    email: str
    groups: tuple[str, ...]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _form(
    *,
    scope: str | None,
    audience: str | list[str] | None,
    expires_in: int | None,
    not_before: int | None,
    extra_claims: Mapping[str, Any] | None,
) -> dict[str, str]:
    form: dict[str, str] = {}
    if scope is not None:
        form["scope"] = scope
    if audience is not None:
        form["audience"] = audience if isinstance(audience, str) else " ".join(audience)
    if expires_in is not None:
        form["expires_in"] = str(int(expires_in))
    if not_before is not None:
        form["not_before"] = str(int(not_before))
    if extra_claims is not None:
        form["extra_claims"] = json.dumps(dict(extra_claims))
    return form


class OidcProvider:
    """A running ``server.mjs``; every ``a``-prefixed method is the async twin of its sync one.

    Token helpers take the per-request knobs the server supports:

    - ``scope``: taken verbatim (space-separated);
    - ``audience``: a string or a list (several give a list ``aud``); default ``"vre"``;
    - ``expires_in``: seconds from now for ``exp`` (``<= 0`` gives an already expired token);
    - ``not_before``: seconds from now for ``nbf`` (``> 0`` gives a not-yet-valid token);
    - ``extra_claims``: merged into the claims last; a ``None`` value removes that claim
      (e.g. ``{"wlcg.ver": "2.0"}`` or ``{"wlcg.groups": None}``).
    """

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, state_dir: Path, log_path: Path
    ) -> None:
        self.process = process
        self.port = port
        self.state_dir = state_dir
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.issuer = f"{self.base_url}/"
        self.discovery_url = f"{self.issuer}.well-known/openid-configuration"
        self.jwks_url = f"{self.issuer}jwk"
        self.token_url = f"{self.issuer}token"
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.default_audience = DEFAULT_AUDIENCE
        self.users: dict[str, TestUser] = {}
        self._http = httpx.Client(timeout=10.0)

    # ---- lifecycle ----

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, audience: str = DEFAULT_AUDIENCE) -> Iterator[OidcProvider]:
        """Start the provider in a temporary state directory; stop it on exit."""
        node = os.environ.get("VRE_TEST_NODE") or shutil.which("node")
        if not node:
            raise OidcProviderError(
                "the OIDC test provider needs Node.js (>= 20) on PATH (or VRE_TEST_NODE)"
            )
        if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
            raise OidcProviderError(
                f"{OIDC_DIR}/node_modules is missing: run "
                "`cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error`"
            )
        with tempfile.TemporaryDirectory(prefix="vre-oidc-") as tmp:
            state_dir = Path(tmp)
            provider = cls._launch(node, state_dir, audience)
            try:
                yield provider
            finally:
                provider.stop()

    @classmethod
    def _launch(cls, node: str, state_dir: Path, audience: str) -> OidcProvider:
        last_error: OidcProviderError | None = None
        for attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            log_path = state_dir / f"provider-{attempt}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        node,
                        str(SERVER_SCRIPT),
                        "--port",
                        str(port),
                        "--state",
                        str(state_dir),
                        "--audience",
                        audience,
                        "--watch-stdin",
                    ],
                    cwd=OIDC_DIR,
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            provider = cls(process, port, state_dir, log_path)
            try:
                provider._wait_ready()
            except OidcProviderError as exc:
                provider.stop()
                last_error = exc
                if process.returncode == _EXIT_ADDRESS_IN_USE or isinstance(exc, _NotServing):
                    continue  # the free port was taken meanwhile, or it hung: try again
                raise
            return provider
        assert last_error is not None
        raise last_error

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last: str = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OidcProviderError(
                    f"the OIDC test provider exited with {self.process.returncode} during "
                    f"startup; its log:\n{self.log()}"
                )
            try:
                response = self._http.get(self.discovery_url, timeout=1.0)
                if response.status_code == 200 and response.json().get("issuer") == self.issuer:
                    self._load_state()
                    return
                last = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
        raise _NotServing(
            f"the OIDC test provider did not serve {self.discovery_url} within "
            f"{STARTUP_TIMEOUT:.0f} s ({last}); its log:\n{self.log()}"
        )

    def _load_state(self) -> None:
        state = self.state()
        self.default_audience = state["default_audience"]
        self.users = {
            name: TestUser(
                username=name,
                sub=info["sub"],
                password=info["password"],
                name=info["name"],
                email=info["email"],
                groups=tuple(info["groups"]),
            )
            for name, info in state["users"].items()
        }

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then SIGKILL; idempotent."""
        self._http.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def log(self) -> str:
        """The provider's combined stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    # ---- plain requests ----

    def state(self) -> dict[str, Any]:
        """``GET /__test__/state``: issuer, ``signing_kid``, ``published_kids``, users, clients."""
        response = self._http.get(f"{self.base_url}/__test__/state")
        response.raise_for_status()
        return dict(response.json())

    def discovery(self) -> dict[str, Any]:
        response = self._http.get(self.discovery_url)
        response.raise_for_status()
        return dict(response.json())

    def jwks(self) -> dict[str, Any]:
        response = self._http.get(self.jwks_url)
        response.raise_for_status()
        return dict(response.json())

    def subject(self, user: str) -> str:
        """The ``sub`` of a test user (``alice``, ``bob``, ``carol``, ``admin``)."""
        return self.users[user].sub

    def _auth(self, client_id: str | None, client_secret: str | None) -> tuple[str, str]:
        if client_id is None:
            return (self.client_id, self.client_secret)
        return (client_id, client_secret or "")

    def _form_password(self, user: str, password: str | None) -> dict[str, str]:
        known = self.users.get(user)
        if password is None:
            password = known.password if known else ""
        return {"grant_type": "password", "username": user, "password": password}

    @staticmethod
    def _result(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {"error": "not_json", "error_description": response.text[:500]}
        if response.status_code != 200:
            raise TokenRequestError(response.status_code, body)
        return dict(body)

    # ---- token endpoint (sync) ----

    def token_response(
        self,
        form: Mapping[str, str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> dict[str, Any]:
        """POST any form to the token endpoint; the JSON body, or :class:`TokenRequestError`."""
        response = self._http.post(
            self.token_url, data=dict(form), auth=self._auth(client_id, client_secret)
        )
        return self._result(response)

    def password_token(
        self,
        user: str = "alice",
        *,
        password: str | None = None,
        scope: str | None = DEFAULT_SCOPE,
        audience: str | list[str] | None = None,
        expires_in: int | None = None,
        not_before: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> str:
        """An access token for a test user (test-only password grant)."""
        form = self._form_password(user, password) | _form(
            scope=scope,
            audience=audience,
            expires_in=expires_in,
            not_before=not_before,
            extra_claims=extra_claims,
        )
        return str(
            self.token_response(form, client_id=client_id, client_secret=client_secret)[
                "access_token"
            ]
        )

    def client_credentials_token(
        self,
        *,
        scope: str | None = None,
        audience: str | list[str] | None = None,
        expires_in: int | None = None,
        not_before: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> str:
        """An access token for the client itself (``sub`` = ``client_id``, no groups)."""
        form = {"grant_type": "client_credentials"} | _form(
            scope=scope,
            audience=audience,
            expires_in=expires_in,
            not_before=not_before,
            extra_claims=extra_claims,
        )
        return str(
            self.token_response(form, client_id=client_id, client_secret=client_secret)[
                "access_token"
            ]
        )

    def exchange(
        self,
        token: str,
        audience: str | list[str],
        *,
        scope: str | None = None,
        expires_in: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> str:
        """RFC 8693 exchange: a token for the same subject and another audience."""
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        } | _form(
            scope=scope,
            audience=audience,
            expires_in=expires_in,
            not_before=None,
            extra_claims=extra_claims,
        )
        return str(
            self.token_response(form, client_id=client_id, client_secret=client_secret)[
                "access_token"
            ]
        )

    def rotate(self, *, keep_old: bool = False) -> dict[str, Any]:
        """New signing key (new kid); old keys leave the JWKS unless ``keep_old``.

        Returns the new state (``signing_kid``, ``published_kids``, ``previous_kids``).
        """
        url = f"{self.base_url}/__test__/rotate" + ("?keep_old=1" if keep_old else "")
        response = self._http.post(url)
        response.raise_for_status()
        return dict(response.json())

    # ---- async twins ----

    async def atoken_response(
        self,
        form: Mapping[str, str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(
                self.token_url, data=dict(form), auth=self._auth(client_id, client_secret)
            )
        return self._result(response)

    async def apassword_token(
        self,
        user: str = "alice",
        *,
        password: str | None = None,
        scope: str | None = DEFAULT_SCOPE,
        audience: str | list[str] | None = None,
        expires_in: int | None = None,
        not_before: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> str:
        form = self._form_password(user, password) | _form(
            scope=scope,
            audience=audience,
            expires_in=expires_in,
            not_before=not_before,
            extra_claims=extra_claims,
        )
        body = await self.atoken_response(form, client_id=client_id, client_secret=client_secret)
        return str(body["access_token"])

    async def aclient_credentials_token(
        self,
        *,
        scope: str | None = None,
        audience: str | list[str] | None = None,
        expires_in: int | None = None,
        not_before: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> str:
        form = {"grant_type": "client_credentials"} | _form(
            scope=scope,
            audience=audience,
            expires_in=expires_in,
            not_before=not_before,
            extra_claims=extra_claims,
        )
        body = await self.atoken_response(form, client_id=client_id, client_secret=client_secret)
        return str(body["access_token"])

    async def aexchange(
        self,
        token: str,
        audience: str | list[str],
        *,
        scope: str | None = None,
        expires_in: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> str:
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        } | _form(
            scope=scope,
            audience=audience,
            expires_in=expires_in,
            not_before=None,
            extra_claims=extra_claims,
        )
        body = await self.atoken_response(form, client_id=client_id, client_secret=client_secret)
        return str(body["access_token"])

    async def arotate(self, *, keep_old: bool = False) -> dict[str, Any]:
        url = f"{self.base_url}/__test__/rotate" + ("?keep_old=1" if keep_old else "")
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(url)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OpenID provider on 127.0.0.1 for the whole test session.

    Key rotation is global to the session: a test that calls ``rotate()`` changes the keys for
    every later test (tokens are signed with the newest key, so fresh tokens keep working;
    cached JWKS in long-lived validators may need their unknown-kid refresh).
    """
    with OidcProvider.start() as provider:
        yield provider
