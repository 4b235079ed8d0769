"""RFC 9457 problem responses for every error path of a VRE app."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from vre_common.errors import HeadDone, MalformedBodyError, VreError, problem_type_uri
from vre_common.logging import current_request_id

PROBLEM_JSON = "application/problem+json"
JSON_MEDIA_TYPES = ("application/json",)
"""What a JSON-only operation reads (``+json`` suffixes are accepted too)."""
log = structlog.get_logger("vre.problems")

_HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    411: "Length required",
    413: "Payload too large",
    414: "URI too long",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Invalid input",
    429: "Too many requests",
}


def http_problem_slug(status: int) -> str:
    """The problem type of an HTTP-level error (no route, wrong method, …): its title's slug."""
    return _HTTP_TITLES.get(status, "Error").lower().replace(" ", "-")


def http_problem_types() -> dict[str, tuple[int, str]]:
    """slug → (status, title) of every HTTP-level problem type."""
    return {http_problem_slug(status): (status, title) for status, title in _HTTP_TITLES.items()}


def text_position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def json_syntax_error(doc: str | bytes, offset: int, reason: str) -> MalformedBodyError:
    """A JSON syntax error where a person can find it: line, column and the parser's reason."""
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else str(doc)
    line, column = text_position(text, offset)
    # Lines as text_position counts them (str.splitlines also breaks at \x0b, \x85, U+2028 …
    # and drops a last empty line: "\n" fails at line 2).
    excerpt = text.split("\n")[line - 1][max(0, column - 40) : column + 40]
    return MalformedBodyError(
        f"the body is not valid JSON: {reason} at line {line}, column {column}",
        errors=[
            {
                "loc": ["body"],
                "msg": f"{reason} (line {line}, column {column})",
                "type": "json_invalid",
            }
        ],
        extra={"line": line, "column": column, "reason": reason, "excerpt": excerpt},
    )


def yaml_syntax_error(exc: Exception, what: str = "the body") -> MalformedBodyError:
    """A YAML parser error (PyYAML's ``MarkedYAMLError``) with line, column and reason."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    reason = str(getattr(exc, "problem", None) or exc).strip()
    context = getattr(exc, "context", None)
    if context:
        reason = f"{reason} ({context})"
    if mark is None:
        return MalformedBodyError(f"{what} is not valid YAML: {reason}", extra={"reason": reason})
    line, column = mark.line + 1, mark.column + 1
    return MalformedBodyError(
        f"{what} is not valid YAML: {reason} at line {line}, column {column}",
        errors=[
            {
                "loc": ["body"],
                "msg": f"{reason} (line {line}, column {column})",
                "type": "yaml_invalid",
            }
        ],
        extra={"line": line, "column": column, "reason": reason},
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _length_message(kind: str, ctx: dict[str, Any], value: Any) -> str | None:
    kind = kind.removeprefix("string_")
    if kind not in ("too_short", "too_long") or not isinstance(value, str | list | dict):
        return None
    bound = int(ctx.get("min_length" if kind == "too_short" else "max_length") or 0)
    word = "at least" if kind == "too_short" else "at most"
    unit = "character" if isinstance(value, str) else "item"
    return f"should have {word} {_plural(bound, unit)} ({len(value)} given)"


_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "float_type": "a number",
    "string_type": "a string",
}
_PLAIN_MESSAGES = {
    "extra_forbidden": "unknown field: check its spelling against the operation's schema",
    "missing": "required, but missing",
}


def humane_message(err: dict[str, Any]) -> str:
    """pydantic's message, rewritten where the raw one means nothing to a person (a string
    has characters, not 'items after validation'; a YAML body is not 'a dictionary')."""
    kind = str(err.get("type", ""))
    value = err.get("input")
    length = _length_message(kind, err.get("ctx") or {}, value)
    if length is not None:
        return length
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"expected a JSON object, got {_json_kind(value)}"
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return f"expected {expected}, got {_json_kind(value)}"
    return _PLAIN_MESSAGES.get(kind, str(err.get("msg", "")))


_JSON_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (list, "an array"),
    (bytes, "a body that is not JSON"),
    (type(None), "null"),
)


def _json_kind(value: Any) -> str:
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), "another type")


class FieldError(BaseModel):
    """One problem with one field of the request."""

    loc: list[str | int]
    msg: str
    type: str = "value_error"


class Problem(BaseModel):
    """An RFC 9457 problem document, as every VRE error is returned."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class ProblemResponse(JSONResponse):
    """A JSON response with the problem media type."""

    media_type = PROBLEM_JSON


def problem_response(
    request_path: str,
    *,
    status: int,
    title: str,
    type_uri: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemResponse:
    """Build a problem+json response; ``extra`` keys become extension members."""
    body: dict[str, Any] = {
        "type": type_uri,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request_path,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return ProblemResponse(body, status_code=status, headers=headers)


def problem_from_error(request_path: str, exc: VreError) -> ProblemResponse:
    """Render one of our errors."""
    return problem_response(
        request_path,
        status=exc.status,
        title=exc.title,
        type_uri=exc.type_uri,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) if not isinstance(p, int) else p for p in err.get("loc", ())],
                "msg": humane_message(err),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


def _json_decode_error(exc: RequestValidationError) -> MalformedBodyError | None:
    """FastAPI reports a body that is not JSON as a validation error at ``["body", offset]``;
    turn it into the line, column and reason the parser knew."""
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            loc = err.get("loc", ())
            offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
            reason = str((err.get("ctx") or {}).get("error") or "invalid JSON")
            return json_syntax_error(exc.body if exc.body is not None else "", offset, reason)
    return None


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app accepts on the request's path (all routes of the
    path, not just the first that matched), with HEAD wherever GET is."""
    from vre_common.middleware import methods_for_path

    methods = methods_for_path(request.app, request.scope)
    if "GET" in methods:
        methods.add("HEAD")
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error path of ``app`` answer with application/problem+json."""

    async def on_vre_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, VreError)
        if exc.status >= 500:
            log.warning("backend_error", error=type(exc).__name__, detail=exc.detail)
        return problem_from_error(request.url.path, exc)

    async def on_validation(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        malformed = _json_decode_error(exc)
        if malformed is not None:
            return problem_from_error(request.url.path, malformed)
        errors = _validation_errors(exc)
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem_response(
            request.url.path,
            status=422,
            title="Invalid input",
            type_uri=problem_type_uri("invalid-input"),
            detail=f"{len(errors)} problem(s) in the request: {where}",
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        title = _HTTP_TITLES.get(status, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if status == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        headers = dict(exc.headers or {})
        if status == 405:
            allowed = allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
            if detail == "Method Not Allowed":
                detail = (
                    f"{request.scope.get('vre_original_method', request.method)} is not allowed "
                    f"on {request.url.path}; allowed: {headers.get('Allow', 'none')}"
                )
        return problem_response(
            request.url.path,
            status=status,
            title=title,
            type_uri=problem_type_uri(http_problem_slug(status)),
            detail=detail,
            headers=headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
        if isinstance(exc, HeadDone):  # a HEAD stopped a streamed body on purpose
            raise exc
        log.exception("unhandled_exception", error=type(exc).__name__)
        return problem_response(
            request.url.path,
            status=500,
            title="Internal error",
            type_uri=problem_type_uri("internal-error"),
            detail="an unexpected error occurred; quote the request id when reporting it",
        )

    app.add_exception_handler(VreError, on_vre_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the problem+json errors of a route."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {
            "description": _HTTP_TITLES.get(status, "Backend error" if status >= 500 else "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def stored_problem(exc: VreError, *, extensions: bool = True) -> dict[str, Any]:
    """An error as a problem document kept on a background job's record (no request).

    ``extensions``: include the error's extension members (``extra``), as a response would.
    """
    problem: dict[str, Any] = {
        "type": exc.type_uri,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if exc.errors:
        problem["errors"] = exc.errors
    if extensions and exc.extra:
        problem.update({k: v for k, v in exc.extra.items() if k not in problem})
    return problem


def job_problem(slug: str, title: str, status: int, detail: str) -> dict[str, Any]:
    """A problem document kept on a background job's record, made without an exception."""
    return {"type": problem_type_uri(slug), "title": title, "status": status, "detail": detail}


def internal_problem(detail: str) -> dict[str, Any]:
    """The problem document kept on a job that stopped on an unexpected error."""
    return job_problem("internal-error", "Internal error", 500, detail)


def interrupted_problem(detail: str) -> dict[str, Any]:
    """The problem document kept on a job a stopped process left active (503)."""
    return job_problem("interrupted", "Interrupted", 503, detail)
