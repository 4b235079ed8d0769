"""The browser-facing routes: landing page, guides, sign-in and the dashboard's assets.

None of these is part of the API document: they serve people, not programs. Every HTML page
carries a Content-Security-Policy without inline scripts or styles.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, FastAPI, Header, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from vre_common.auth import TokenValidator
from vre_common.crypto import TokenCipher, UndecryptableTokenError, load_or_create_key
from vre_common.db import Database
from vre_common.errors import ForbiddenError, VreError
from vre_common.http import make_http_client
from vre_common.settings import HttpClientSettings
from vre_gateway.config import GatewaySettings
from vre_gateway.web.oidc import OidcClient, Pkce
from vre_gateway.web.sessions import SessionView, WebSessions

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parents[4]  # the repository, when installed editable
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SESSION_COOKIE = "vre_session"
LOGIN_COOKIE = "vre_login"
LOGIN_TTL = 600  # seconds to complete a sign-in
APP_HEADER = "vre-app"  # X-Requested-With value the dashboard sends (CSRF protection)
GUIDE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

templates = Jinja2Templates(directory=HERE / "templates")


@dataclass
class Guide:
    """A Markdown document of docs/ served under /guide/<name>."""

    name: str
    title: str
    path: Path


class WebUi:
    """What the browser routes share: settings, the session service, templates' context."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        validator: TokenValidator,
        database: Database,
        issuer: str | None,
        dev_issuer: bool,
    ) -> None:
        web = settings.web
        self.settings = settings
        self.issuer = issuer
        self.dev_issuer = dev_issuer
        self.assets = web.assets_dir or SOURCE_ROOT / "web" / "dist"
        self.docs = web.docs_dir or SOURCE_ROOT / "docs"
        self.secure_cookies = settings.base_url.startswith("https://")
        self.redirect_uri = settings.base_url + "/auth/callback"
        self.http = make_http_client(HttpClientSettings(connect_timeout=3.0, read_timeout=10.0))
        key = web.session_key
        self.cipher = TokenCipher(
            key.get_secret_value().encode()
            if key is not None
            else (lambda: load_or_create_key(settings.data / "web-session.key")),
            [k.get_secret_value().encode() for k in web.previous_session_keys],
        )
        self.oidc = OidcClient(issuer, web, self.http) if issuer else None
        self.sessions = (
            WebSessions(
                database=database,
                cipher=self.cipher,
                oidc=self.oidc,
                validator=validator,
                settings=web,
            )
            if self.oidc is not None
            else None
        )
        self.markdown = MarkdownIt("commonmark", {"html": False}).enable("table")

    async def aclose(self) -> None:
        """Close the issuer client."""
        await self.http.aclose()

    @functools.cached_property
    def guides(self) -> list[Guide]:
        """The Markdown guides present, operations first (read once: they ship with the
        release)."""
        found = []
        for path in sorted(self.docs.glob("*.md")) if self.docs.is_dir() else []:
            if GUIDE_NAME.match(path.stem):
                first = path.read_text(encoding="utf-8").lstrip().splitlines()[:1]
                title = first[0].lstrip("# ").strip() if first else path.stem
                found.append(Guide(path.stem, title, path))
        return sorted(found, key=lambda g: (g.name != "operations", g.name))

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """A server-rendered page with the security headers."""
        values = {
            "signed_in": bool(request.cookies.get(SESSION_COOKIE)),
            "issuer_name": "the development issuer"
            if self.dev_issuer and self.settings.web.issuer is None
            else self.settings.web.issuer_name,
            "dev_issuer": self.dev_issuer,
            "base_url": self.settings.base_url,
            "scope_prefix": self.settings.projects.scope_prefix,
            **context,
        }
        return templates.TemplateResponse(
            request, template, values, status_code=status_code, headers=PAGE_HEADERS
        )

    def message(
        self, request: Request, title: str, detail: str, status: int, retry: str | None = None
    ) -> HTMLResponse:
        """A page telling what went wrong (browser navigations get pages, not JSON)."""
        return self.page(request, "message.html", status, title=title, detail=detail, retry=retry)


def safe_next(target: str | None) -> str:
    """Only same-origin paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/app"
    return target


def install_web(app: FastAPI, ui: WebUi) -> None:
    """Mount the pages, the sign-in routes and the dashboard's assets on the gateway."""
    app.state.web = ui
    app.mount("/site", StaticFiles(directory=HERE / "static"), name="site")
    app.mount(
        "/app/assets",
        StaticFiles(directory=ui.assets / "assets", check_dir=False),
        name="app-assets",
    )
    app.include_router(_router(ui))


def _router(ui: WebUi) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def landing(request: Request) -> HTMLResponse:
        return ui.page(request, "landing.html", guides=ui.guides)

    @router.get("/guide/{name}")
    async def guide(request: Request, name: str) -> HTMLResponse:
        found = {g.name: g for g in ui.guides}
        if not GUIDE_NAME.match(name) or name not in found:
            return ui.message(request, "No such guide", f"There is no guide named {name!r}.", 404)
        text = found[name].path.read_text(encoding="utf-8")
        body = re.sub(
            r'href="([a-z0-9][a-z0-9-]*)\.md(#[^"]*)?"',
            r'href="/guide/\1\2"',
            ui.markdown.render(text),
        )
        return ui.page(request, "guide.html", title=found[name].title, body=Markup(body))  # noqa: S704 - rendered with html disabled

    @router.get("/auth/login")
    async def login(request: Request, next: str | None = None) -> Response:
        target = safe_next(next)
        if ui.oidc is None:
            return ui.message(
                request,
                "Sign-in is not configured",
                "This VRE has no issuer to sign in with (VRE_WEB__ISSUER or VRE_AUTH__ISSUERS).",
                503,
            )
        pkce, state = Pkce.new(), secrets.token_urlsafe(24)
        try:
            url = await ui.oidc.authorization_url(
                redirect_uri=ui.redirect_uri, state=state, pkce=pkce
            )
        except VreError as exc:
            return ui.message(
                request,
                "The sign-in service is unavailable",
                exc.detail,
                exc.status,
                retry=f"/auth/login?next={target}",
            )
        response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
        sealed = ui.cipher.encrypt(
            json.dumps({"state": state, "verifier": pkce.verifier, "next": target})
        )
        response.set_cookie(
            LOGIN_COOKIE,
            sealed,
            max_age=LOGIN_TTL,
            path="/auth",
            secure=ui.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get("/auth/callback")
    async def callback(
        request: Request,
        *,
        code: str | None = None,
        state: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
        vre_login: Annotated[str | None, Cookie()] = None,
    ) -> Response:
        retry = "/auth/login?next=/app"
        login_state = _open_login_cookie(ui.cipher, vre_login)
        if login_state is None:
            return ui.message(
                request,
                "Sign-in expired",
                "This sign-in was not started here or took longer than ten minutes.",
                400,
                retry,
            )
        retry = f"/auth/login?next={login_state['next']}"
        if not state or not secrets.compare_digest(state, str(login_state["state"])):
            return ui.message(
                request, "Sign-in refused", "The sign-in's state does not match.", 400, retry
            )
        if error or not code:
            detail = error_description or error or "the issuer sent no authorization code"
            return ui.message(request, "Sign-in did not complete", detail, 400, retry)
        assert ui.oidc is not None
        assert ui.sessions is not None
        try:
            tokens = await ui.oidc.exchange_code(
                code=code, redirect_uri=ui.redirect_uri, verifier=str(login_state["verifier"])
            )
            cookie, _ = await ui.sessions.create(tokens)
        except VreError as exc:
            return ui.message(request, "Sign-in did not complete", exc.detail, exc.status, retry)
        response = RedirectResponse(
            str(login_state["next"]), status_code=303, headers={"Cache-Control": "no-store"}
        )
        response.delete_cookie(LOGIN_COOKIE, path="/auth")
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=ui.settings.web.session_lifetime_seconds,
            path="/",
            secure=ui.secure_cookies,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get("/auth/session")
    async def session(
        x_requested_with: Annotated[str | None, Header()] = None,
        vre_session: Annotated[str | None, Cookie()] = None,
    ) -> Response:
        _require_app_header(x_requested_with)
        if ui.sessions is None:
            raise ForbiddenError("sign-in is not configured on this VRE")
        view: SessionView = await ui.sessions.current(vre_session)
        return Response(
            view.model_dump_json(),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    @router.post("/auth/logout", status_code=204)
    async def logout(
        x_requested_with: Annotated[str | None, Header()] = None,
        vre_session: Annotated[str | None, Cookie()] = None,
    ) -> Response:
        _require_app_header(x_requested_with)
        if ui.sessions is not None:
            await ui.sessions.end(vre_session)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/app")
    @router.get("/app/{path:path}")
    async def dashboard(request: Request, path: str = "") -> Response:
        index = ui.assets / "index.html"
        if not index.is_file():
            return ui.message(
                request,
                "The dashboard is not built",
                "Run `make run` (it builds web/) or set VRE_WEB__ASSETS_DIR to the built "
                "dashboard.",
                503,
            )
        candidate = (ui.assets / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(ui.assets.resolve()):
            return FileResponse(candidate)
        return FileResponse(index, headers=PAGE_HEADERS, media_type="text/html")

    return router


def _require_app_header(value: str | None) -> None:
    if value != APP_HEADER:
        raise ForbiddenError(
            f"send the header X-Requested-With: {APP_HEADER} (it keeps other sites from "
            "using your session)"
        )


def _open_login_cookie(cipher: TokenCipher, sealed: str | None) -> dict[str, Any] | None:
    if not sealed:
        return None
    try:
        state: dict[str, Any] = json.loads(cipher.decrypt(sealed, ttl=LOGIN_TTL))
    except (UndecryptableTokenError, ValueError):
        return None
    return state if {"state", "verifier", "next"} <= state.keys() else None
