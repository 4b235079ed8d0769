"""The browser-facing side of the gateway: landing page, guides, sign-in (OIDC code + PKCE
against the embedded development issuer, over real HTTP), sessions and the dashboard's files."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from vre_common.auth import build_validator
from vre_common.testing import ServerThread, free_port
from vre_gateway.config import GatewaySettings
from vre_gateway.dev_issuer import DevIssuer
from vre_gateway.main import create_app

APP = {"X-Requested-With": "vre-app"}


@dataclass
class Site:
    url: str
    data: Path
    issuer: DevIssuer

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, follow_redirects=False)


def _start(tmp: Path, **web: object) -> tuple[ServerThread, Site]:
    port = free_port()
    settings = GatewaySettings.model_validate(
        {
            "mode": "embedded",
            "port": port,
            "data": tmp,
            "database": {"url": f"sqlite+aiosqlite:///{tmp / 'gateway.db'}"},
            "dev_issuer": {"enabled": True, "token_lifetime_seconds": 600},
            "rate_limit": {"enabled": False},
            "search": {"sources": ["projects"]},
            "web": {"assets_dir": str(tmp / "dist"), **web},
        }
    )
    dev = DevIssuer(settings.data, settings.dev_issuer_url, settings.dev_issuer)
    auth = settings.auth.model_copy(update={"issuers": [dev.issuer], "audience": "vre"})
    app = create_app(settings, validator=build_validator(auth), dev_issuer=dev)
    server = ServerThread(app, port=port)
    return server, Site(server.url, tmp, dev)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    server, site = _start(tmp_path)
    with server:
        yield site


def sign_in(client: httpx.Client, site: Site, user: str = "alice", next_: str = "/app") -> str:
    """The whole browser dance; returns where the browser lands."""
    start = client.get("/auth/login", params={"next": next_})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    form = client.get(authorize)
    assert form.status_code == 200
    hidden = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', form.text))
    done = client.post(
        urlsplit(authorize).path,
        data={**hidden, "username": user, "password": site.issuer.passwords[user]},
    )
    assert done.status_code == 303, done.text
    callback = client.get(done.headers["location"])
    assert callback.status_code == 303, callback.text
    return str(callback.headers["location"])


def test_landing_page_is_readable_without_javascript_and_forbids_inline_scripts(
    site: Site,
) -> None:
    with site.client() as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script" not in page.text
    assert "Science Project" in page.text
    assert 'href="/auth/login?next=/app"' in page.text
    assert 'href="/docs"' in page.text
    assert 'href="/guide/operations"' in page.text
    assert '<html lang="en">' in page.text


def test_guides_render_the_docs_and_refuse_other_paths(site: Site) -> None:
    with site.client() as client:
        guide = client.get("/guide/operations")
        assert guide.status_code == 200
        assert "<h1>" in guide.text
        assert "<table>" in client.get("/guide/configuration").text
        for bad in ("/guide/..%2Fpyproject", "/guide/nope", "/guide/README.md"):
            assert client.get(bad).status_code == 404, bad


def test_sign_in_with_code_and_pkce_gives_a_cookie_session_and_a_working_token(
    site: Site,
) -> None:
    with site.client() as client:
        start = client.get("/auth/login", params={"next": "/app/projects"})
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
        assert query["redirect_uri"] == [site.url + "/auth/callback"]
        client.cookies.clear()

        landed = sign_in(client, site, "alice", "/app/projects")
        assert landed == "/app/projects"
        cookie = next(c for c in client.cookies.jar if c.name == "vre_session")
        assert cookie.has_nonstandard_attr("HttpOnly")

        refused = client.get("/auth/session")  # no X-Requested-With: another site's request
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"

        session = client.get("/auth/session", headers=APP)
        assert session.status_code == 200
        assert session.headers["cache-control"] == "no-store"
        body = session.json()
        assert body["user"]["username"] == "alice"
        assert "/vre/alpha" in body["user"]["groups"]
        assert body["session_expires_at"] > body["expires_at"] - 600
        token = body["access_token"]
        me = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["username"] == "alice"

        assert client.post("/auth/logout", headers=APP).status_code == 204
        gone = client.get("/auth/session", headers=APP)
        assert gone.status_code == 401
        assert gone.json()["type"].endswith("/sign-in-required")


def test_tokens_are_stored_encrypted(site: Site) -> None:
    with site.client() as client:
        sign_in(client, site)
        token = client.get("/auth/session", headers=APP).json()["access_token"]
    with sqlite3.connect(site.data / "gateway.db") as db:
        query = "select access_token, refresh_token, username from web_sessions"
        rows = db.execute(query).fetchall()
    assert len(rows) == 1
    access, refresh, username = rows[0]
    assert username == "alice"
    assert token not in access
    assert refresh is not None
    assert not access.startswith("eyJ")


def test_wrong_password_shows_the_form_again(site: Site) -> None:
    with site.client() as client:
        authorize = client.get("/auth/login").headers["location"]
        form = client.get(authorize)
        hidden = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', form.text))
        again = client.post(
            urlsplit(authorize).path, data={**hidden, "username": "alice", "password": "nope"}
        )
    assert again.status_code == 401
    assert "wrong password" in again.text
    assert 'value="alice"' in again.text
    assert "content-security-policy" in again.headers


def test_callback_refuses_forged_or_replayed_requests(site: Site) -> None:
    with site.client() as client:
        # no sign-in started here
        assert client.get("/auth/callback", params={"code": "x", "state": "y"}).status_code == 400
        authorize = client.get("/auth/login").headers["location"]
        form = client.get(authorize)
        hidden = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', form.text))
        done = client.post(
            urlsplit(authorize).path,
            data={**hidden, "username": "bob", "password": site.issuer.passwords["bob"]},
        )
        params = parse_qs(urlsplit(done.headers["location"]).query)
        forged = client.get(
            "/auth/callback", params={"code": params["code"][0], "state": "not-the-state"}
        )
        assert forged.status_code == 400
        assert "state" in forged.text
        first = client.get(done.headers["location"])
        assert first.status_code == 303
        client.cookies.delete("vre_session")
        replay_login = client.get("/auth/login")  # a fresh login cookie, the old code
        state = parse_qs(urlsplit(replay_login.headers["location"]).query)["state"][0]
        replay = client.get("/auth/callback", params={"code": params["code"][0], "state": state})
        assert replay.status_code == 401
        assert "authorization code" in replay.text


def test_the_next_path_never_leaves_the_site(site: Site) -> None:
    with site.client() as client:
        for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
            client.cookies.clear()
            assert sign_in(client, site, next_=target) == "/app"


def test_the_development_issuer_insists_on_pkce_and_its_own_redirects(site: Site) -> None:
    with site.client() as client:
        base = {"response_type": "code", "client_id": "vre-web", "state": "s"}
        no_pkce = client.get(
            "/dev-issuer/authorize", params={**base, "redirect_uri": site.url + "/auth/callback"}
        )
        assert no_pkce.status_code == 400
        assert "PKCE" in no_pkce.text
        elsewhere = client.get(
            "/dev-issuer/authorize",
            params={
                **base,
                "redirect_uri": "https://evil.example/cb",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
        )
        assert elsewhere.status_code == 400
        assert "redirect_uri" in elsewhere.text


def test_the_access_token_is_renewed_and_a_refused_renewal_ends_the_session(
    tmp_path: Path,
) -> None:
    server, site = _start(tmp_path, refresh_margin_seconds=3600)  # always "about to expire"
    with server, site.client() as client:
        sign_in(client, site)
        first = client.get("/auth/session", headers=APP).json()["access_token"]
        second = client.get("/auth/session", headers=APP).json()["access_token"]
        assert first != second  # renewed with the (rotated) refresh token
        me = client.get("/me", headers={"Authorization": f"Bearer {second}"})
        assert me.status_code == 200
        site.issuer.refresh_tokens.clear()  # the issuer forgets: the renewal is refused
        ended = client.get("/auth/session", headers=APP)
        assert ended.status_code == 401
        assert "renewed" in ended.json()["detail"]
    with sqlite3.connect(tmp_path / "gateway.db") as db:
        assert db.execute("select count(*) from web_sessions").fetchone() == (0,)


def test_an_unreachable_issuer_is_a_clear_page_not_a_hang(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"
    server, site = _start(tmp_path, issuer=closed)
    with server, site.client() as client:
        page = client.get("/auth/login")
    assert page.status_code == 503
    assert "unreachable" in page.text
    assert 'href="/auth/login?next=/app"' in page.text


def test_the_dashboard_is_served_from_the_built_assets(site: Site) -> None:
    with site.client() as client:
        missing = client.get("/app")
        assert missing.status_code == 503
        assert "not built" in missing.text
        dist = site.data / "dist"
        (dist / "assets").mkdir(parents=True)
        (dist / "index.html").write_text("<!doctype html><title>VRE</title><div id=app></div>")
        (dist / "assets" / "main.js").write_text("console.log('vre')")
        (dist / "favicon.svg").write_text("<svg/>")
        for path in ("/app", "/app/", "/app/projects/demo", "/app/runs/1234"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert "<div id=app>" in page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/app/assets/main.js").text == "console.log('vre')"
        assert client.get("/app/assets/nope.js").status_code == 404
        assert client.get("/app/favicon.svg").text == "<svg/>"
        traversal = client.get("/app/..%2F..%2Fgateway.db")
        assert "<div id=app>" in traversal.text  # never the file


def test_sign_in_through_a_real_openid_provider(tmp_path: Path, oidc_provider: Any) -> None:
    """The same sign-in against panva's oidc-provider (a certified OpenID implementation):
    its login and consent pages, code + PKCE, refresh tokens with prompt=consent."""
    port = free_port()
    settings = GatewaySettings.model_validate(
        {
            "mode": "distributed",
            "port": port,
            "data": tmp_path,
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"},
            "auth": {"issuers": [oidc_provider.issuer], "audience": "vre"},
            "rate_limit": {"enabled": False},
            "search": {"sources": ["projects"]},
            "migrations": "upgrade",
            "web": {
                "client_id": "vre-web",
                "scopes": ["openid", "profile", "email", "offline_access", "wlcg.groups"],
                "authorize_params": {"prompt": "consent"},
                "refresh_margin_seconds": 7200,  # renew at every /auth/session
            },
        }
    )
    app = create_app(settings, validator=build_validator(settings.auth))
    alice = oidc_provider.subject("alice")
    with (
        ServerThread(app, port=port) as server,
        httpx.Client(base_url=server.url, timeout=10.0, follow_redirects=True) as client,
    ):
        login = client.get("/auth/login", params={"next": "/app/projects"})
        assert login.status_code == 200, login.text  # the provider's login page
        action = re.search(r'action="([^"]+)"', login.text)
        assert action is not None
        consent = client.post(
            httpx.URL(str(login.url)).join(action.group(1)),
            data={"prompt": "login", "login": alice, "password": "any"},
        )
        action = re.search(r'action="([^"]+)"', consent.text)
        assert action is not None, consent.text
        landed = client.post(
            httpx.URL(str(consent.url)).join(action.group(1)), data={"prompt": "consent"}
        )
        assert landed.url.path == "/app/projects"  # 503: the dashboard is not built here
        first = client.get("/auth/session", headers=APP)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["user"]["sub"] == alice
        assert body["user"]["username"] == "alice"
        second = client.get("/auth/session", headers=APP).json()
        assert second["access_token"] != body["access_token"]  # renewed with the refresh token
        me = client.get("/me", headers={"Authorization": f"Bearer {second['access_token']}"})
        assert me.status_code == 200
        assert me.json()["issuer"] == oidc_provider.issuer
