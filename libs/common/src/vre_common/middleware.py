"""HTTP semantics every VRE app shares: HEAD wherever GET is, 415 on JSON-only operations, and
the request's origin for problem type URIs. Pure ASGI (streaming bodies pass untouched)."""

from __future__ import annotations

import contextlib
import email.message
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vre_common.errors import (
    HeadDone,
    UnsupportedMediaTypeError,
    reset_request_origin,
    set_request_origin,
)
from vre_common.problems import JSON_MEDIA_TYPES, problem_from_error

ORIGINAL_METHOD = "vre_original_method"
"""Scope key: the method the client sent when a middleware answered it as another (HEAD)."""

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class HeadMiddleware:
    """HEAD on any GET operation: the GET's status and headers, no body (RFC 9110 §9.3.2).

    The request runs as GET; its body messages are dropped, and a streamed body is stopped at
    its first chunk (a long download or a followed log is not produced for nothing).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        get_scope = {**scope, "method": "GET", ORIGINAL_METHOD: "HEAD"}
        finished = False

        async def head_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                await send(message)
                return
            if message["type"] != "http.response.body" or finished:
                return
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise HeadDone

        with contextlib.suppress(HeadDone):
            await self.app(get_scope, receive, head_send)


def _is_json_media(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def reads_json_only(route: Any) -> bool:
    """An operation whose body is one JSON document (a pydantic body, not a form)."""
    field = getattr(route, "body_field", None)
    return field is not None and not isinstance(field.field_info, params.Form)


@dataclass(frozen=True)
class RouteInfo:
    """What the HTTP semantics need of one route (FastAPI's included routers flattened)."""

    path_format: str
    methods: frozenset[str]
    json_only: bool
    in_schema: bool
    regex: Any

    def matches(self, route_path: str) -> bool:
        """Whether this route's path template matches ``route_path``."""
        return bool(self.regex.match(route_path))


def route_table(app: Any) -> list[RouteInfo]:
    """Every route of ``app`` with methods (mounts excluded: a mounted app answers itself)."""
    table = []
    for ctx in iter_route_contexts(app.router.routes):
        methods = ctx.methods
        regex = getattr(ctx, "path_regex", None)
        if not methods or regex is None:
            continue
        table.append(
            RouteInfo(
                path_format=str(ctx.path_format),
                methods=frozenset(methods),
                json_only=reads_json_only(ctx),
                in_schema=bool(getattr(ctx, "include_in_schema", False)),
                regex=regex,
            )
        )
    return table


def methods_for_path(app: Any, scope: Scope) -> set[str]:
    """Every method ``app`` accepts on the scope's path: those of every route with the path
    template of the first route that matches it (one path can be served by several routes; a
    catch-all such as ``/dids/{scope}/{name:path}`` further down is another path)."""
    path = get_route_path(scope)
    table = route_table(app)
    first = next((r for r in table if r.matches(path)), None)
    if first is None:
        return set()
    return {m for r in table if r.path_format == first.path_format for m in r.methods}


class JsonOnlyMiddleware:
    """415 with the accepted media types when a JSON-only operation gets another body type
    (YAML, multipart, text…), instead of a validation error about a 'dictionary'.

    Only requests that declare a non-JSON ``Content-Type`` are matched against the routes
    (JSON requests, the hot path, pass untouched).
    """

    def __init__(self, app: ASGIApp, *, router_app: Any) -> None:
        self.app = app
        self.router_app = router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            content_type = _header(scope, b"content-type")
            if content_type and not _is_json_media(content_type):
                route = self._route(scope)
                if route is not None:
                    media = content_type.split(";")[0].strip()
                    accepted = list(JSON_MEDIA_TYPES)
                    error = UnsupportedMediaTypeError(
                        f"{scope['method']} {scope.get('root_path', '')}{route.path_format} reads "
                        f"{' or '.join(accepted)}, not {media}",
                        extra={"accepted": accepted},
                        headers={f"Accept-{scope['method'].capitalize()}": ", ".join(accepted)}
                        if scope["method"] in ("POST", "PATCH")
                        else None,
                    )
                    path = scope.get("root_path", "") + scope["path"]
                    await problem_from_error(path, error)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> RouteInfo | None:
        path = get_route_path(scope)
        for route in route_table(self.router_app):
            if scope["method"] in route.methods and route.matches(path):
                return route if route.json_only else None
        return None


class RequestOriginMiddleware:
    """Remember the origin the client called (``scheme://host``, or the gateway's forwarded
    one), so problem type URIs point at this VRE's problem pages (:func:`problem_base`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"x-forwarded-host") or _header(scope, b"host")
        scheme = _header(scope, b"x-forwarded-proto") or scope.get("scheme", "http")
        scheme = scheme if scheme in ("http", "https") else "http"
        origin = f"{scheme}://{host}" if host and _sane_host(host) else None
        token = set_request_origin(origin)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_request_origin(token)


def _sane_host(host: str) -> bool:
    return len(host) <= 255 and all(c.isalnum() or c in ".-:[]" for c in host)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1")).split(",")[0].strip()
    return None
