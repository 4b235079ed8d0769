"""Browser tests: Debian's Chromium driven by Playwright against a `vre up` started here.

The embedded VRE runs as a subprocess with its own data folder on a free port, exactly as
`make run` starts it; the dashboard it serves is the one `make deps` built into web/dist.
Screenshots of every step go to artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from services.zenodo.tests.support.standin import ZenodoStandIn, served_standin
from vre_common.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("VRE_TEST_CHROMIUM", "/usr/lib/chromium/chromium"))
ARTIFACTS = ROOT / "artifacts" / "browser"
DIST = ROOT / "web" / "dist"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
VRE = [sys.executable, "-m", "vre_gateway"]
TIMEOUT_MS = 20_000
ZENODO_TOKENS = {"zenodo-alice-0123456789": "alice"}


@dataclass
class Vre:
    """The embedded VRE under test."""

    url: str
    data: Path
    env: dict[str, str]
    zenodo: ZenodoStandIn

    def password(self, user: str) -> str:
        """A development user's password, as `vre up` wrote it."""
        passwords: dict[str, str] = json.loads(
            (self.data / "dev-issuer" / "passwords.json").read_text()
        )
        return passwords[user]

    def token(self, user: str) -> str:
        """An access token for API calls made by the test itself."""
        return subprocess.run(
            [*VRE, "token", user],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def api(self, user: str) -> httpx.Client:
        """An HTTP client calling the API as ``user``."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token(user)}"}, timeout=30
        )


def _require_chromium() -> None:
    if CHROMIUM.is_file():
        return
    message = (
        f"Chromium is missing at {CHROMIUM}: `make test` installs it (apt-get install chromium "
        "fonts-liberation, in `make system-deps`)"
    )
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.fail(message + "; as root it could have been installed, so this is an error")
    pytest.skip(message + "; not root, so it could not be installed here")


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """Where screenshots are saved (artifacts/browser/, ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="package")
def zenodo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenodoStandIn]:
    """The Zenodo stand-in the services' tests use, on a real port (alice has a token)."""
    with served_standin(tmp_path_factory.mktemp("zenodo-standin"), ZENODO_TOKENS) as standin:
        yield standin


@pytest.fixture(scope="package")
def vre(tmp_path_factory: pytest.TempPathFactory, zenodo: ZenodoStandIn) -> Iterator[Vre]:
    """`vre up` on a free port with its own data folder (Zenodo: the stand-in), stopped with
    SIGTERM at the end."""
    if not (DIST / "index.html").is_file():
        pytest.fail(
            "the dashboard is not built: run `make deps` (cd web && npm ci && npm run build)"
        )
    folder = tmp_path_factory.mktemp("vre-browser")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VRE_DATA": str(folder / "data"),
        "VRE_PORT": str(port),
        "VRE_PUBLIC_URL": url,
        "VRE_ZENODO_ZENODO__URL": zenodo.base_url,
    }
    env.pop("VRE_WEB__ASSETS_DIR", None)
    log_path = folder / "up.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*VRE, "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield Vre(url=url, data=folder / "data", env=env, zenodo=zenodo)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (its bundled Node runs offline)."""
    _require_chromium()
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium (Playwright's own browser download is not used)."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=["--disable-gpu", "--disable-quic"]
    )
    yield browser
    browser.close()


def new_context(browser: Browser, vre: Vre, *, bypass_csp: bool = False) -> BrowserContext:
    """A fresh browser profile (own cookies) on the VRE."""
    context = browser.new_context(
        base_url=vre.url,
        viewport={"width": 1280, "height": 900},
        bypass_csp=bypass_csp,
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def sign_in(page: Page, vre: Vre, user: str, *, next_path: str = "/app") -> None:
    """Sign in through the development issuer's form, as a person would."""
    page.goto(f"/auth/login?next={next_path}")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(vre.password(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{next_path}*")
    page.get_by_test_id("username").wait_for()


@pytest.fixture
def context(browser: Browser, vre: Vre) -> Iterator[BrowserContext]:
    """A fresh browser profile for one test."""
    context = new_context(browser, vre)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page in the test's own browser profile."""
    return context.new_page()
