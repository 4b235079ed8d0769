"""Browser tests: Debian's Chromium driven by Playwright against a `vre up` started here.

The embedded VRE runs as a subprocess with its own data folder on a free port, exactly as
`make run` starts it; the dashboard it serves is the one `make deps` built into web/dist.
Screenshots of every step go to artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from services.ivoa.tests.support.dachs import DachsServer, dachs_available
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
VO_TAP = "dachs-tap"
VO_CONE = "dachs-cone"


@dataclass
class Vre:
    """The embedded VRE under test."""

    url: str
    data: Path
    env: dict[str, str]
    zenodo: ZenodoStandIn
    dachs: DachsServer | None
    log: Path | None = None

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed browser test shows what `vre up` logged last: the failure in CI is then
    explained by the server's side too (screenshots stay on the machine that ran it)."""
    report: pytest.TestReport = yield
    vre = getattr(item, "funcargs", {}).get("vre")
    if report.when == "call" and report.failed and isinstance(vre, Vre) and vre.log:
        lines = vre.log.read_text(errors="replace").splitlines()[-60:]
        report.sections.append(("vre up's last log lines", "\n".join(lines)))
    return report


def expect_done(page: Page, text: str, timeout: float | None = None) -> None:
    """Wait for an action's done message; if it never comes, fail with the problems the page
    shows (the action's, or none: then it hung or was never sent)."""
    try:
        expect(page.get_by_test_id("done").filter(has_text=text)).to_be_visible(timeout=timeout)
    except AssertionError:
        problems = page.get_by_role("alert").all_inner_texts()
        pytest.fail(f"no {text!r}; the page shows {problems or 'no problem'}")


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """Where screenshots are saved (artifacts/browser/, ignored by git); the previous run's
    are removed first, so every picture there is of this run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="package")
def zenodo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenodoStandIn]:
    """The Zenodo stand-in the services' tests use, on a real port (alice has a token)."""
    with served_standin(tmp_path_factory.mktemp("zenodo-standin"), ZENODO_TOKENS) as standin:
        yield standin


@pytest.fixture(scope="package")
def dachs() -> Iterator[DachsServer | None]:
    """The IVOA tests' private DaCHS (TAP + cone search over a synthetic catalogue), when DaCHS
    is installed (`make system-deps`); None otherwise (the IVOA browser test then skips)."""
    if dachs_available():
        yield None
        return
    with DachsServer() as server:
        yield server


@pytest.fixture(scope="package")
def vre(zenodo: ZenodoStandIn, dachs: DachsServer | None) -> Iterator[Vre]:
    """`vre up` on a free port with its own data folder (Zenodo: the stand-in; VO services: the
    private DaCHS), stopped with SIGTERM at the end.

    While working on the dashboard, VRE_BROWSER_URL and VRE_BROWSER_DATA point the tests at a
    `vre up` already running (its URL and data folder) instead, which saves its start-up."""
    running = os.environ.get("VRE_BROWSER_URL")
    if running:
        data = Path(os.environ["VRE_BROWSER_DATA"])
        env = {**os.environ, "VRE_DATA": str(data)}
        yield Vre(url=running, data=data, env=env, zenodo=zenodo, dachs=dachs)
        return
    if not (DIST / "index.html").is_file():
        pytest.fail(
            "the dashboard is not built: run `make deps` (cd web && npm ci && npm run build)"
        )
    # The embedded PostgreSQL runs as the postgres user when we are root: its data folder must
    # be reachable by it, which pytest's own temporary folders (0700) are not.
    folder = Path(tempfile.mkdtemp(prefix="vre-browser-"))
    folder.chmod(0o755)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VRE_DATA": str(folder / "data"),
        "VRE_PORT": str(port),
        "VRE_PUBLIC_URL": url,
        "VRE_ZENODO_ZENODO__URL": zenodo.base_url,
    }
    if dachs is not None:
        env["VRE_IVOA_SERVICES"] = json.dumps(
            [
                {"name": VO_TAP, "type": "tap", "url": dachs.tap_url, "title": "DaCHS test TAP"},
                {"name": VO_CONE, "type": "scs", "url": dachs.scs_url, "title": "Synthetic cone"},
            ]
        )
    env.pop("VRE_WEB__ASSETS_DIR", None)
    log_path = folder / "up.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*VRE, "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            # `vre up` starts PostgreSQL and Rucio first: about 110 s on this shared machine
            deadline = time.monotonic() + 300
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield Vre(
                url=url, data=folder / "data", env=env, zenodo=zenodo, dachs=dachs, log=log_path
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(folder, ignore_errors=True)


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


def new_context(
    browser: Browser, vre: Vre, *, bypass_csp: bool = False, width: int = 1280
) -> BrowserContext:
    """A fresh browser profile (own cookies) on the VRE, in a window `width` pixels wide."""
    context = browser.new_context(
        base_url=vre.url,
        viewport={"width": width, "height": 900},
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


ANSWERED_4XX = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page, collected from now on.

    Chromium also logs each 4xx answer of the API as a console error; those are answers the page
    shows in words (a refused condition, provenance not recorded yet), so they are left out —
    a 5xx is not, except /readyz's 503, which is how it says a dependency is down (the page
    reads its body to mark what is unavailable)."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        url = str(message.location.get("url", ""))
        readiness = url.endswith("/readyz") and "status of 503" in message.text
        if message.type == "error" and not ANSWERED_4XX.match(message.text) and not readiness:
            errors.append(f"console: {message.text} at {url}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    width: int = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def overflowing_labels(page: Page) -> list[str]:
    """Texts of the provenance picture wider than their node's box (with its padding)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="provenance-node"]')].flatMap((a) => {
             const box = a.querySelector("rect").getBBox();
             const inside = (b) => b.x >= box.x && b.x + b.width <= box.x + box.width - 4;
             return [...a.querySelectorAll("text")]
               .filter((t) => !inside(t.getBBox()))
               .map((t) => `${a.dataset.node}: "${t.textContent}" (${t.getBBox().width} px)`);
           })"""
    )
    return found
