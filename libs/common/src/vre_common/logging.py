"""Structured JSON logs (structlog) with a request id that travels gateway → service → backend."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str | None] = ContextVar("vre_request_id", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Tokens must never reach a log line: query-string tokens and bearer values are masked.
_SECRET_PATTERNS = [
    re.compile(r"(access_token=)[^&\s]+", re.IGNORECASE),
    re.compile(r"(token=)[^&\s]+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
]


def current_request_id() -> str | None:
    """The id of the request being handled, if any."""
    return _request_id.get()


def scrub(text: str) -> str:
    """Mask tokens in a string (URLs with ``access_token=``, bearer headers)."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


def _scrub_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and ("token" in value.lower() or "bearer" in value.lower()):
            event[key] = scrub(value)
    return event


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    rid = _request_id.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


_configured = False


def ensure_logging() -> None:
    """Configure logging with the defaults unless the process already did (apps call this).

    Without it structlog renders exceptions with every local variable, which for a request
    holding a large body prints thousands of lines.
    """
    if not _configured:
        configure_logging()


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Configure structlog, and route the standard library's loggers through it."""
    global _configured  # noqa: PLW0603 - one process-wide logging set-up
    _configured = True
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _scrub_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _scrub_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-request lines from HTTP clients would repeat what the metrics already count.
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class RequestIdMiddleware:
    """Accept a sane ``X-Request-ID`` (or make one), expose it to logs and echo it back.

    Pure ASGI, so streaming bodies pass through untouched. When an outer app (the gateway)
    already set the id, an inner one (a mounted service) keeps it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id.get()
        outer = rid is not None
        if not outer:
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    candidate = value.decode("latin-1")
                    if _VALID_ID.match(candidate):
                        rid = candidate
                    break
            if rid is None:
                rid = uuid.uuid4().hex
        assert rid is not None
        token = _request_id.set(rid)
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start" and not outer:
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
