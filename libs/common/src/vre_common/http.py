"""HTTP client helpers for backend calls: timeouts, pooling, request-id propagation,
and one translation of transport failures into 502/503/504 problems."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from vre_common.errors import BackendTimeoutError, BackendUnavailableError, BadGatewayError
from vre_common.logging import REQUEST_ID_HEADER, current_request_id
from vre_common.metrics import BACKEND_SECONDS
from vre_common.settings import HttpClientSettings


async def _add_request_id(request: httpx.Request) -> None:
    rid = current_request_id()
    if rid is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = rid


def make_http_client(
    settings: HttpClientSettings | None = None,
    *,
    base_url: str = "",
    headers: dict[str, str] | None = None,
    verify: bool | str = True,
) -> httpx.AsyncClient:
    """A pooled async client with connect/read timeouts that forwards the request id."""
    s = settings or HttpClientSettings()
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
        limits=httpx.Limits(
            max_connections=s.max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=s.keepalive_expiry,
        ),
        event_hooks={"request": [_add_request_id]},
        follow_redirects=False,
    )


class QueuedTransport(httpx.AsyncBaseTransport):
    """At most ``slots`` requests out at once; the others wait here, in arrival order.

    httpcore's pool can queue requests itself, but it then looks over every queued request
    and every pooled connection (a system call for each idle one) whenever a request comes
    or a response ends: under a burst the client's CPU grows with the square of the queue.
    Waiting on a semaphore in front of a pool as large as ``slots`` costs the same for one
    request or a thousand. A request holds its slot until its response is closed (read to
    the end for ``send()``, ``aclose()`` for a stream); it waits for one at most the
    request's pool timeout (then ``httpx.PoolTimeout``, as from the pool).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, slots: int) -> None:
        self._inner = inner
        self._slots = asyncio.Semaphore(slots)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._slots.locked():  # (a free slot is taken at once: nothing to time)
            timeout = request.extensions.get("timeout", {}).get("pool")
            try:
                async with asyncio.timeout(timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise httpx.PoolTimeout("no free connection in time", request=request) from exc
        else:
            await self._slots.acquire()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise
        if response.is_closed:  # a body already read (a test transport): nothing holds on
            self._slots.release()
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _SlotStream(response.stream, self._slots)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SlotStream(httpx.AsyncByteStream):
    """A response body that gives its request's slot back when it is closed (once)."""

    def __init__(self, inner: httpx.AsyncByteStream, slots: asyncio.Semaphore) -> None:
        self._inner = inner
        self._slots: asyncio.Semaphore | None = slots

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._slots is not None:
                self._slots.release()
                self._slots = None


@asynccontextmanager
async def backend_call(backend: str, operation: str) -> AsyncIterator[None]:
    """Time a backend call and turn transport failures into our 5xx errors.

    Connection refused/reset → 503 (Retry-After), timeouts → 504, protocol garbage → 502.
    """
    start = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except httpx.TimeoutException as exc:
        outcome = "timeout"
        raise BackendTimeoutError(f"{backend} did not answer in time ({operation})") from exc
    except (
        httpx.ConnectError,
        httpx.RemoteProtocolError,
        httpx.ReadError,
        httpx.WriteError,
    ) as exc:
        outcome = "unavailable"
        raise BackendUnavailableError(
            f"{backend} is unreachable ({operation}): {type(exc).__name__}", retry_after=5
        ) from exc
    except httpx.HTTPError as exc:
        outcome = "error"
        raise BadGatewayError(f"{backend} call failed ({operation}): {type(exc).__name__}") from exc
    except BaseException:
        outcome = "error"
        raise
    finally:
        BACKEND_SECONDS.labels(backend, operation, outcome).observe(time.perf_counter() - start)
