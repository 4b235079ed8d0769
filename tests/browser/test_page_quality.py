"""The pages themselves: the Content-Security-Policy holds (no console errors, no violations)
and axe-core finds no serious or critical accessibility problem on the landing page and the
dashboard's main views."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import AXE, Vre, new_context, sign_in

pytestmark = pytest.mark.browser

CSP_PARTS = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
}
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@pytest.fixture(scope="module")
def project(vre: Vre) -> Iterator[dict[str, Any]]:
    """A project of alice's with one file, one finished run and its provenance, made by API."""
    slug = f"a11y-{uuid.uuid4().hex[:8]}"
    with vre.api("alice") as alice:
        created = alice.post("/projects", json={"name": "Accessibility check", "slug": slug})
        assert created.status_code == 201, created.text
        scope = created.json()["scope"]
        up = alice.put(f"/datalake/files/{scope}/data.txt", content=b"1\n2\n3\n")
        assert up.status_code in (200, 201), up.text
        yield {"slug": slug, "scope": scope}


def test_dashboard_sends_csp_and_loads_without_errors(page: Page, vre: Vre) -> None:
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.add_init_script(RECORD_VIOLATIONS)

    landing = page.goto("/")
    assert landing is not None
    assert {p.strip() for p in landing.headers["content-security-policy"].split(";")} >= CSP_PARTS
    sign_in(page, vre, "alice")
    answer = page.goto("/app/workflows")
    assert answer is not None
    csp = answer.headers.get("content-security-policy", "")
    assert {p.strip() for p in csp.split(";")} >= CSP_PARTS, csp
    expect(page.get_by_role("heading", name="Workflows", level=1)).to_be_visible()
    for name in (
        "Projects",
        "Data Lake",
        "Catalogue",
        "Archives (IVOA)",
        "Zenodo",
        "Provenance",
        "Overview",
    ):
        page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__cspViolations") == []
    assert problems == []
    # the access token lives in the page's memory only
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert "token" not in page.url


def test_csp_forbids_inline_scripts(page: Page, vre: Vre) -> None:
    """The policy is really enforced: an inline script injected into the page does not run."""
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto("/app")
    ran = page.evaluate(
        """() => {
          window.__inline = false;
          const s = document.createElement("script");
          s.textContent = "window.__inline = true";
          document.head.append(s);
          return window.__inline;
        }"""
    )
    assert ran is False
    page.wait_for_function("window.__cspViolations.length > 0")  # reported asynchronously
    violations: list[str] = page.evaluate("window.__cspViolations")
    assert any(v.startswith("script-src") for v in violations), violations


def _axe(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {resultTypes: ["violations"]})"""
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5],
            }
            for v in violations
        ],
        indent=1,
    )


def test_accessibility_landing_and_dashboard(
    browser: Browser, vre: Vre, project: dict[str, Any], artifacts: Path
) -> None:
    if not AXE.is_file():
        pytest.fail("axe-core is missing: run `make deps` (cd web && npm ci)")
    # axe is injected as a script tag, which the page's CSP would block: this profile bypasses it.
    context = new_context(browser, vre, bypass_csp=True)
    page = context.new_page()
    try:
        found: dict[str, list[dict[str, Any]]] = {}
        page.goto("/")
        found["/"] = _axe(page)
        sign_in(page, vre, "alice")
        scope, slug = project["scope"], project["slug"]
        views = {
            "/app": "Overview",
            "/app/projects": "Projects",
            f"/app/projects/{slug}": "Accessibility check",
            "/app/datalake": "Data Lake",
            f"/app/datalake/{scope}": f"Scope {scope}",
            f"/app/datalake/{scope}/data.txt": "data.txt",
            "/app/workflows": "Workflows",
            "/app/catalogue": "Software catalogue",
            "/app/zenodo": "Zenodo",
            "/app/reproductions": "Reproductions",
            "/app/ivoa": "Astronomical archives (IVOA)",
            f"/app/search?q={slug}": "Search",
            f"/app/provenance?entity=did:{scope}:data.txt&direction=down": "Provenance",
        }
        for path, heading in views.items():
            page.goto(path)
            expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
            page.wait_for_load_state("networkidle")
            found[path] = _axe(page)
        # a page with its problems shown: the broken reana.yaml view
        page.goto("/app/workflows")
        page.get_by_label("reana.yaml", exact=True).fill("workflow:\n  type: serial\n")
        page.get_by_role("button", name="Check the reana.yaml").click()
        expect(page.get_by_test_id("spec-view")).to_be_visible()
        found["/app/workflows (errors shown)"] = _axe(page)
        page.screenshot(path=str(artifacts / "22-axe-last-view.png"), full_page=True)
    finally:
        context.close()
    bad = {path: _describe(v) for path, v in found.items() if v}
    assert not bad, "\n".join(f"{path}: {text}" for path, text in bad.items())


def test_provenance_picture_is_keyboard_usable(
    page: Page, vre: Vre, project: dict[str, Any]
) -> None:
    """Each node of the picture is reached with Tab and opened with Enter."""
    scope = project["scope"]
    sign_in(page, vre, "alice", next_path="/app")
    page.goto(f"/app/provenance?entity=did:{scope}:data.txt&direction=up&depth=2")
    svg = page.get_by_test_id("provenance-svg")
    expect(svg).to_be_visible(timeout=40_000)
    node = svg.locator(f'[data-node="did:{scope}:data.txt"]')
    expect(node).to_have_attribute("href", f"/app/datalake/{scope}/data.txt")
    page.get_by_role("button", name="Show").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.dataset?.node") == f"did:{scope}:data.txt":
            break
    else:
        raise AssertionError("Tab never reached the node")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/datalake/{scope}/data.txt")
    expect(page.get_by_test_id("did")).to_have_text(f"{scope}:data.txt")
