"""One page per problem type (the ``type`` URI of every error): what it means, what to do."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from vre_common.errors import NotFoundError
from vre_gateway.problem_types import ProblemType, catalog
from vre_gateway.web.routes import HERE, PAGE_HEADERS, SESSION_COOKIE

router = APIRouter(tags=["problems"])
templates = Jinja2Templates(directory=HERE / "templates")
_markdown = MarkdownIt("commonmark", {"html": False})


def _inline(text: str) -> Markup:
    return Markup(_markdown.renderInline(text))  # noqa: S704 - rendered with html disabled


def _wanted(request: Request) -> str:
    """html, markdown or json, from Accept (a browser asks for text/html first)."""
    accept = request.headers.get("accept", "")
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == "text/html":
            return "html"
        if media == "text/markdown":
            return "markdown"
        if media in ("application/json", "application/problem+json"):
            return "json"
    return "json"


def _page(request: Request, template: str, **context: object) -> HTMLResponse:
    values = {"signed_in": bool(request.cookies.get(SESSION_COOKIE)), **context}
    return templates.TemplateResponse(request, template, values, headers=PAGE_HEADERS)


@router.get("/problems", include_in_schema=False)
async def problem_index(request: Request) -> Response:
    types = list(catalog().values())
    wanted = _wanted(request)
    if wanted == "html":
        return _page(request, "problems.html", types=types)
    if wanted == "markdown":
        from vre_gateway.problem_types import render

        return PlainTextResponse(render(), media_type="text/markdown; charset=utf-8")
    return JSONResponse({"items": [t.as_json() for t in types]})


@router.get("/problems/{slug}", include_in_schema=False)
async def problem_page(request: Request, slug: str) -> Response:
    found: ProblemType | None = catalog().get(slug)
    if found is None:
        raise NotFoundError(f"there is no problem type {slug!r}; GET /problems lists them all")
    wanted = _wanted(request)
    if wanted == "html":
        return _page(
            request,
            "problem.html",
            problem=found,
            meaning=_inline(found.meaning),
            advice=_inline(found.advice),
        )
    if wanted == "markdown":
        return PlainTextResponse(found.markdown(), media_type="text/markdown; charset=utf-8")
    return JSONResponse(found.as_json())
