"""Distributed mode: forward requests to a service over pooled HTTP connections.

aiohttp's client is used on this hot path because it measured 3-5 times cheaper per request
than httpx here (../shared/recipes/gateway-performance.md; bench/ has our own numbers).
Small bodies are buffered in both directions; large or unknown-length ones stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from vre_common.errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    BadGatewayError,
    VreError,
)
from vre_common.logging import current_request_id
from vre_common.problems import problem_from_error

KEEPALIVE_SECONDS = 4.0
"""How long an idle connection to a service stays pooled (below uvicorn's 5 s)."""
_HOP_BY_HOP = frozenset(
    {
        b"content-length",  # handled apart
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
_RESPONSE_SKIP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "server",
        "date",
        "x-request-id",
    }
)


class ServiceProxy:
    """An ASGI app that forwards everything it receives to one upstream service.

    ``unix_socket``: reach the upstream over this Unix socket (``base_url`` then only names
    it). ``read_timeout``: the longest silence while waiting for or reading the answer (None:
    no limit). ``preserve_host``: send the client's Host header on (the upstream builds the same
    URLs as the caller sees); otherwise it goes as ``X-Forwarded-Host``. ``counted_upstream``:
    the upstream counts the request in the same metrics (the embedded mode's processes share
    them), so the outer app's MetricsMiddleware leaves it out.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        buffer_bytes: int,
        connect_timeout: float,
        read_timeout: float | None,
        unix_socket: str | None = None,
        preserve_host: bool = False,
        counted_upstream: bool = False,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.buffer_bytes = buffer_bytes
        self.unix_socket = unix_socket
        self.preserve_host = preserve_host
        self.counted_upstream = counted_upstream
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The pooled client session (created on first use, inside the event loop)."""
        if self._session is None or self._session.closed:
            # An idle pooled connection is dropped before the upstream's own keep-alive
            # (uvicorn: 5 s) closes it, so a request never goes out on a closing one.
            connector: aiohttp.BaseConnector = (
                aiohttp.UnixConnector(
                    path=self.unix_socket, limit=256, keepalive_timeout=KEEPALIVE_SECONDS
                )
                if self.unix_socket
                else aiohttp.TCPConnector(
                    limit=256, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS
                )
            )
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=connector,
                # Cookies belong to each client: a jar would keep one caller's session
                # cookie (Set-Cookie on its answer) and send it with everybody's requests.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def aclose(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._forward(scope, receive, send)
        except VreError as exc:
            response = problem_from_error(scope.get("root_path", "") + scope["path"], exc)
            await response(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        url, headers, length = self._request_parts(scope)
        data: bytes | AsyncIterator[bytes] | None
        if length is not None and length <= self.buffer_bytes:
            data = await _read_body(receive) if length else None
        elif length is None and scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            data = None
        else:
            data = _stream_body(receive)
        try:
            upstream = await self.session().request(
                scope["method"], url, headers=headers, data=data, allow_redirects=False
            )
        except TimeoutError as exc:
            raise BackendTimeoutError(f"the {self.name} service did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise BackendUnavailableError(
                f"the {self.name} service is unreachable", retry_after=5
            ) from exc
        except aiohttp.ClientError as exc:
            raise BadGatewayError(f"the {self.name} service failed: {type(exc).__name__}") from exc
        async with upstream:
            try:
                await self._relay(upstream, send)
            except TimeoutError as exc:
                raise BackendTimeoutError(f"the {self.name} service stalled") from exc

    def _request_parts(self, scope: Scope) -> tuple[URL, dict[str, str], int | None]:
        # Forward the path exactly as the client encoded it (%2F stays %2F), minus the mount.
        raw = scope.get("raw_path") or scope["path"].encode()
        root = scope.get("root_path", "").encode()
        if root and raw.startswith(root):
            raw = raw[len(root) :]
        query = scope.get("query_string", b"")
        target = self.base_url + raw.decode("latin-1")
        url = URL(target + ("?" + query.decode("latin-1") if query else ""), encoded=True)
        headers: dict[str, str] = {}
        length: int | None = None
        for raw_name, raw_value in scope["headers"]:
            if raw_name == b"content-length":
                length = int(raw_value)
                headers["content-length"] = raw_value.decode("latin-1")
            elif raw_name not in _HOP_BY_HOP:
                headers[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        rid = current_request_id()
        if rid:
            headers["x-request-id"] = rid
        client = scope.get("client")
        if client:
            headers["x-forwarded-for"] = client[0]
        # What the client called: the service's problem type URIs point at the gateway.
        for name, value in scope["headers"]:
            if name == b"host":
                headers["host" if self.preserve_host else "x-forwarded-host"] = value.decode(
                    "latin-1"
                )
        headers["x-forwarded-proto"] = scope.get("scheme", "http")
        return url, headers, length

    async def _relay(self, upstream: aiohttp.ClientResponse, send: Send) -> None:
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream.headers.items()
            if k.lower() not in _RESPONSE_SKIP
        ]
        size = upstream.content_length
        if size is not None and size <= self.buffer_bytes:
            body = await upstream.read()
            headers.append((b"content-length", str(len(body)).encode()))
            await send(
                {"type": "http.response.start", "status": upstream.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if size is not None:
            headers.append((b"content-length", str(size).encode()))
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
        async for chunk in upstream.content.iter_chunked(256 * 1024):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise BadGatewayError("the client went away")
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    more = True
    while more:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise BadGatewayError("the client went away")
        body = message.get("body", b"")
        if body:
            yield body
        more = message.get("more_body", False)
