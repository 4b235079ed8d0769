"""RFC 9457 problem responses for every error path of a VRE app."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from vre_common.errors import PROBLEM_BASE, VreError
from vre_common.logging import current_request_id

PROBLEM_JSON = "application/problem+json"
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
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error path of ``app`` answer with application/problem+json."""

    async def on_vre_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, VreError)
        if exc.status >= 500:
            log.warning("backend_error", error=type(exc).__name__, detail=exc.detail)
        return problem_from_error(request.url.path, exc)

    async def on_validation(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem_response(
            request.url.path,
            status=422,
            title="Invalid input",
            type_uri=PROBLEM_BASE + "invalid-input",
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
        if status == 405 and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(
            request.url.path,
            status=status,
            title=title,
            type_uri=PROBLEM_BASE + title.lower().replace(" ", "-"),
            detail=detail,
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
        log.exception("unhandled_exception", error=type(exc).__name__)
        return problem_response(
            request.url.path,
            status=500,
            title="Internal error",
            type_uri=PROBLEM_BASE + "internal-error",
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


def internal_problem(detail: str) -> dict[str, Any]:
    """The problem document kept on a job that stopped on an unexpected error."""
    return {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": detail,
    }
