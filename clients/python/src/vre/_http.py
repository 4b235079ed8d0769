"""The HTTP session under every call: the token only to the VRE's origin, problems as errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from vre.config import discover_token
from vre.errors import NoTokenError, TransportError, error_for

TokenSource = Callable[[], str | None]


def did_path(did: str) -> tuple[str, str]:
    """``scope:name`` → (scope, name); the name keeps its slashes."""
    scope, sep, name = did.partition(":")
    if not sep or not scope or not name:
        raise ValueError(f"a DID is scope:name, not {did!r}")
    return scope, name


def q(value: str) -> str:
    """Quote a path segment (slashes in DID names stay: the API routes take them)."""
    return quote(value, safe="/")


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: what "the same origin" compares."""
    return (url.scheme, url.host, url.port)


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` to requests for the VRE's own origin, from a source
    read again for every request; after a 401 it reads the source once more and retries
    (when the body can be sent again)."""

    def __init__(self, base_url: httpx.URL, source: TokenSource) -> None:
        self._origin = origin(base_url)
        self._source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin(request.url) != self._origin:  # never leak the token elsewhere
            yield request
            return
        token = self._source()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        replayable = isinstance(request.stream, httpx.ByteStream)
        if response.status_code == 401 and replayable:
            fresh = self._source()
            if fresh and fresh != token:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request


class Session:
    """One httpx client bound to the VRE's URL. Raises :mod:`vre.errors` classes."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        verify: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self._fixed = token.strip() if token else None
        self.http = httpx.Client(
            base_url=self.url,
            auth=BearerAuth(httpx.URL(self.url), self.token),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=verify,
            follow_redirects=True,
            headers={"User-Agent": "vre-client/0.1"},
        )

    def token(self) -> str | None:
        """The token for the next request: ``token=`` if given, else discovery (re-read)."""
        return self._fixed or discover_token()

    def require_token(self) -> str:
        """The current token, or :class:`NoTokenError` saying where it was looked for."""
        token = self.token()
        if not token:
            raise NoTokenError(
                "no bearer token: set BEARER_TOKEN or BEARER_TOKEN_FILE, run `vre login`, "
                "or pass token= to vre.Client"
            )
        return token

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; an error answer raises its :class:`~vre.errors.ApiError`."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {self.url}{path}: {exc}") from exc
        if response.is_error:
            raise problem_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body of a request's answer."""
        return self.request(method, path, **kwargs).json()

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed request (body read in chunks); error answers raise as :meth:`request`."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise problem_error(response)
                yield response
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {self.url}{path}: {exc}") from exc


def problem_error(response: httpx.Response) -> Exception:
    """The :class:`~vre.errors.ApiError` for an error answer (any body, problem or not)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase, "detail": response.text[:500] or None}
    body.setdefault("status", response.status_code)
    body.setdefault("request_id", response.headers.get("x-request-id"))
    return error_for(response.status_code, body)
