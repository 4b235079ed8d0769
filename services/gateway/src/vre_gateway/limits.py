"""Gateway guards: per-caller rate limit and request body size limit (pure ASGI)."""

from __future__ import annotations

import hashlib
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vre_common.errors import PayloadTooLargeError, RateLimitedError, UriTooLongError, VreError
from vre_common.problems import problem_from_error
from vre_gateway.config import RateLimitSettings


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimitMiddleware:
    """A token bucket per caller: the bearer token's hash, else the client address.

    Keyed by the token rather than the validated subject so that the check costs no
    signature verification; one user with many tokens is still bounded by the issuer's
    token lifetime and by per-service limits.
    """

    def __init__(self, app: ASGIApp, *, settings: RateLimitSettings) -> None:
        self.app = app
        self.rate = settings.requests_per_second
        self.burst = float(settings.burst)
        self.enabled = settings.enabled
        self._buckets: dict[bytes, _Bucket] = {}

    def _key(self, scope: Scope) -> bytes:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hashlib.blake2b(value, digest_size=16).digest()
        client = scope.get("client")
        return (client[0] if client else "?").encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        key = self._key(scope)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            wait = int((1.0 - bucket.tokens) / self.rate) + 1
            await _reject(
                scope,
                receive,
                send,
                RateLimitedError(
                    f"more than {self.rate:g} requests per second; slow down", retry_after=wait
                ),
            )
            return
        bucket.tokens -= 1.0
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse query strings over ``max_query`` bytes (414) and bodies over ``limit`` bytes
    (413), except bodies on the streaming upload routes."""

    def __init__(
        self, app: ASGIApp, *, limit: int, exempt: list[str], max_query: int = 8192
    ) -> None:
        self.app = app
        self.limit = limit
        self.max_query = max_query
        self.exempt = [tuple(e.split(" ", 1)) for e in exempt]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope.get("query_string", b"")) > self.max_query:
            error = UriTooLongError(f"the query string may be at most {self.max_query} bytes")
            await _reject(scope, receive, send, error)
            return
        if scope["type"] != "http" or any(
            scope["method"] == m and scope["path"].startswith(p) for m, p in self.exempt
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await _reject(
                        scope,
                        receive,
                        send,
                        PayloadTooLargeError(
                            f"the body may be at most {self.limit} bytes on this route"
                        ),
                    )
                    return
                break
        seen = 0
        limit = self.limit
        started = rejected = False

        async def limited_receive() -> Message:
            # A body without Content-Length (chunked) is counted as it arrives. Over the limit,
            # answer 413 here and tell the app the client left: an exception raised from
            # receive() would be taken by the app's body parser for a malformed body (400).
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    error = PayloadTooLargeError(f"the body may be at most {limit} bytes")
                    if started:
                        raise error
                    rejected = True
                    await _reject(scope, receive, send, error)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:  # the 413 is the answer; drop what the app says after it
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _reject(scope: Scope, receive: Receive, send: Send, error: VreError) -> None:
    response = problem_from_error(scope["path"], error)
    await response(scope, receive, send)
