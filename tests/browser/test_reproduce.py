"""Reproduce a published result from the dashboard (issue 21), in a real browser on the
embedded VRE with the Zenodo stand-in.

alice runs a deterministic two-step workflow in her own scope and publishes it with its input
(by API); bob opens the DOI's provenance (the published chain is readable by anybody signed
in), presses "Reproduce", chooses his project and follows the job to the verdict
"Reproduced" and a comparison table with one row per output. A record without a run record
is refused in words. A finished reproduction that differs (its answer stood in for by the
browser, the rest real) shows the columns that differ, the largest relative difference and
a short text diff, and fits a phone's, a laptop's and a wide screen's width.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from .conftest import AXE, ZENODO_TOKENS, Vre, console_errors, horizontal_overflow, new_context
from .conftest import sign_in as sign_in_page

pytestmark = pytest.mark.browser

REPRODUCTION_TIMEOUT_MS = 240_000
WIDTHS = [1366, 390, 1920]

# The second step writes a table from the sorted numbers (deterministic).
TABLE_PY = """\
rows = [int(line) for line in open("sorted.txt") if line.strip()]
with open("table.csv", "w") as out:
    out.write("x,y\\n")
    for x in rows:
        out.write(f"{x},{x * 2.5!r}\\n")
"""

SPEC = {
    "version": "0.9.4",
    "inputs": {"parameters": {}},
    "workflow": {
        "type": "serial",
        "specification": {
            "steps": [
                {"name": "sort", "environment": "localhost/vre-browser-test/never-built:1",
                 "commands": ["sort -n numbers.txt > sorted.txt"]},
                {"name": "table", "environment": "localhost/vre-browser-test/never-built:1",
                 "commands": ["python3 code/table.py"]},
            ]
        },
    },
    "outputs": {"files": ["sorted.txt", "table.csv"]},
}  # fmt: skip

META = {
    "upload_type": "dataset",
    "title": "Sorted numbers, tabulated",
    "description": "Published by the dashboard's reproduction test.",
    "creators": [{"name": "Doe, Alice"}],
    "license": "cc-by-4.0",
}


def _poll(
    http: httpx.Client, path: str, done: Callable[[dict[str, Any]], bool], within: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        answer = http.get(path)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.5)


def _published_run(vre: Vre) -> tuple[str, str]:
    """alice's personal run of the workflow, published with its input: (run id, DOI)."""
    uid = uuid.uuid4().hex[:8]
    input_did = f"user.alice:repro-web-{uid}/numbers.txt"
    with vre.api("alice") as alice:
        token = next(t for t, u in ZENODO_TOKENS.items() if u == "alice")
        assert alice.put("/zenodo/credentials", json={"token": token}).status_code == 200
        up = alice.put(f"/datalake/files/user.alice/repro-web-{uid}/numbers.txt",
                       content=b"3\n1\n2\n10\n")  # fmt: skip
        assert up.status_code in (200, 201), up.text
        submitted = alice.post(
            "/workflows/runs",
            json={"spec": SPEC, "inputs": [{"did": input_did}],
                  "files": {"code/table.py": TABLE_PY}, "name": "tabulate"},
        )  # fmt: skip
        assert submitted.status_code == 201, submitted.text
        run_id = submitted.json()["id"]
        run = _poll(alice, f"/workflows/runs/{run_id}",
                    lambda b: b["status"] not in ("queued", "running"))  # fmt: skip
        assert run["status"] == "finished", run.get("error")
        created = alice.post(
            "/zenodo/depositions", json={"run_id": run_id, "dids": [input_did], "metadata": META}
        )
        assert created.status_code == 202, created.text
        deposition = created.json()["id"]
        ready = _poll(alice, f"/zenodo/depositions/{deposition}",
                      lambda b: b["state"] in ("ready", "incomplete"))  # fmt: skip
        assert ready["state"] == "ready", ready
        published = alice.post(f"/zenodo/depositions/{deposition}/publish")
        assert published.status_code == 200, published.text
        return run_id, str(published.json()["doi"])


def _fits(page: Page, artifacts: Path, name: str, overflows: list[str]) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    wider = horizontal_overflow(page)
    if wider > 0:
        overflows.append(f"{name}: {wider} px too wide")


def test_bob_reproduces_alices_doi_from_the_dashboard(
    browser: Browser, vre: Vre, artifacts: Path
) -> None:
    run_id, doi = _published_run(vre)
    slug = f"rep-{uuid.uuid4().hex[:8]}"
    with vre.api("bob") as bob_api:
        made = bob_api.post("/projects", json={"name": "Bob reproduces", "slug": slug})
        assert made.status_code == 201, made.text
    context = new_context(browser, vre)
    page = context.new_page()
    errors = console_errors(page)
    overflows: list[str] = []
    entity = f"doi:{doi.lower()}"

    # the DOI's provenance: alice's published chain is readable by bob; "Reproduce" is offered
    sign_in_page(page, vre, "bob")
    page.goto(f"/app/provenance?entity={entity}&direction=up")
    svg = page.get_by_test_id("provenance-svg")
    expect(svg.locator('[data-node^="run:"]')).to_have_count(1, timeout=40_000)
    expect(svg.locator('[data-node$="numbers.txt"]')).to_have_count(1)
    _fits(page, artifacts, "40-doi-provenance-for-bob", overflows)
    page.get_by_role("link", name=f"Reproduce {entity[4:]}").click()

    # the form: the DOI filled in, the target project chosen among bob's projects
    page.wait_for_url("**/app/reproductions?doi=*")
    expect(page.get_by_label("DOI of the published result")).to_have_value(entity[4:])
    page.get_by_label("Project of the re-run").select_option(slug)
    _fits(page, artifacts, "41-reproduce-form", overflows)
    page.get_by_role("button", name="Start the reproduction").click()

    # the job's page: steps and log while it runs, then the verdict and the table
    page.wait_for_url("**/app/reproductions/*")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reproduction of")
    expect(page.get_by_test_id("repro-steps").locator("li")).to_have_count(4)
    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_have_text("Reproduced", timeout=REPRODUCTION_TIMEOUT_MS)
    expect(page.get_by_test_id("verdict-explained")).to_contain_text("identical")
    steps = page.get_by_test_id("repro-steps").locator("li")
    for i in range(4):
        expect(steps.nth(i)).to_have_attribute("data-state", "done")
    table = page.get_by_role("table", name="Comparison of the outputs")
    rows = table.get_by_test_id("comparison-row")
    expect(rows).to_have_count(2)
    for name in ("sorted.txt", "table.csv"):
        row = rows.filter(has_text=name)
        expect(row.get_by_test_id("outcome")).to_have_text("Yes")
        expect(row.locator("code")).to_have_count(3)  # the name, the original and the new md5
    expect(page.get_by_test_id("repro-log")).to_contain_text("verdict: reproduced")
    inputs = page.get_by_role("table", name="Inputs of the re-run")
    expect(inputs).to_contain_text("the copy published in the record")  # bob cannot read alice's
    expect(page.get_by_role("button", name="Cancel the reproduction")).to_have_count(0)
    expect(page.get_by_role("link", name=slug, exact=True)).to_be_visible()  # the re-run's project
    _fits(page, artifacts, "42-reproduced", overflows)

    # the list of bob's reproductions, and the re-run's page
    page.get_by_role("link", name="Reproductions", exact=True).click()
    listed = page.get_by_role("table", name="Your reproductions")
    expect(listed.get_by_role("row").filter(has_text=doi)).to_contain_text("Reproduced")
    _fits(page, artifacts, "43-reproductions-list", overflows)

    # a record that was not published from a run: refused in words, before anything runs
    plain = vre.zenodo.add_record({"notes.txt": b"no run here\n"}, title="Plain record")
    page.get_by_label("DOI of the published result").fill(f"10.5281/zenodo.{plain}")
    page.get_by_role("button", name="Start the reproduction").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This record cannot be reproduced")
    expect(alert).to_contain_text("vre-run-record.json")
    expect(alert).not_to_contain_text("body.")
    _fits(page, artifacts, "44-not-reproducible", overflows)
    context.close()

    # alice sees "Reproduce" where her DOI is shown: her run's page and her depositions
    context = new_context(browser, vre)
    page = context.new_page()
    alice_errors = console_errors(page)
    sign_in_page(page, vre, "alice", next_path=f"/app/runs/{run_id}")
    published_as = page.get_by_test_id("run-doi")
    expect(published_as).to_contain_text(doi)
    expect(published_as.get_by_role("link", name=f"Reproduce {doi}")).to_be_visible()
    page.goto("/app/zenodo")
    depositions = page.get_by_role("table", name="Your depositions")
    depositions.get_by_role("link", name=f"Reproduce {doi}").click()
    expect(page.get_by_label("DOI of the published result")).to_have_value(doi)
    expect(page.get_by_label("Project of the re-run")).to_have_value("")  # her own scope
    context.close()
    assert overflows == []
    assert errors == []
    assert alice_errors == []


def _differing(rid: str) -> dict[str, Any]:
    """A finished reproduction that differs: a table with two columns beyond the tolerance, a
    text file with other lines, one identical file, one missing."""
    md5 = "0123456789abcdef0123456789abcdef"
    return {
        "id": rid,
        "doi": "10.5281/zenodo.424242",
        "record_id": 424242,
        "project": None,
        "state": "finished",
        "verdict": "differs",
        "reason": None,
        "tolerance": 1e-6,
        "original_run_id": "7f1c2b9e-0000-4000-8000-00000000beef",
        "run_id": None,
        "inputs": [
            {
                "path": "numbers.txt",
                "did": "user.alice:w/numbers.txt",
                "md5": md5,
                "source": "record",
                "used": "user.bob:reproductions/numbers.txt",
                "detail": None,
            },
        ],
        "files": [
            {
                "path": "results/a-rather-long-directory-name/fitted-parameters-per-channel.fits",
                "outcome": "differs",
                "method": "table",
                "original_md5": md5,
                "reproduced_md5": "fedcba9876543210fedcba9876543210",
                "original_bytes": 8640,
                "reproduced_bytes": 8640,
                "max_relative_difference": 0.031,
                "columns": [
                    {"column": "amplitude", "max_relative_difference": 0.031},
                    {"column": "sigma_energy_resolution", "max_relative_difference": 2.4e-5},
                ],
                "detail": "columns differ beyond relative tolerance 1e-06: amplitude, sigma",
            },
            {
                "path": "summary.txt",
                "outcome": "differs",
                "method": "text",
                "original_md5": md5,
                "reproduced_md5": "11111111111111111111111111111111",
                "original_bytes": 40,
                "reproduced_bytes": 44,
                "diff": "--- original/summary.txt\n+++ reproduced/summary.txt\n@@ -1,2 +1,2 @@\n"
                " events: 1204\n-mean: 2.50000000000000000000000000000000000000001\n"
                "+mean: 2.50000000000000000000000000000000000000003\n",
            },
            {
                "path": "sorted.txt",
                "outcome": "identical",
                "method": "checksum",
                "original_md5": md5,
                "reproduced_md5": md5,
                "original_bytes": 9,
                "reproduced_bytes": 9,
            },
            {
                "path": "plot.png",
                "outcome": "missing",
                "method": "bytes",
                "original_md5": md5,
                "reproduced_md5": None,
                "original_bytes": 2048,
                "reproduced_bytes": None,
                "detail": "the re-run did not write this output",
            },
        ],
        "created_at": "2026-12-07T08:00:00Z",
        "finished_at": "2026-12-07T08:03:00Z",
    }


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def test_a_differing_reproduction_as_a_table(
    browser: Browser, vre: Vre, artifacts: Path, width: int
) -> None:
    """The comparison of a reproduction that differs, at every width: which files, which
    columns and how far apart, a short diff for text; nothing scrolls sideways but the table's
    own box; axe finds no serious problem (this profile bypasses the CSP to inject axe)."""
    rid = str(uuid.uuid4())
    body = _differing(rid)
    context = new_context(browser, vre, width=width, bypass_csp=True)
    page = context.new_page()
    errors = console_errors(page)

    def answer(route: Route) -> None:
        if route.request.url.endswith("/logs"):
            route.fulfill(status=200, content_type="text/plain",
                          body="2026-12-07T08:03:00Z verdict: differs\n")  # fmt: skip
        else:
            route.fulfill(status=200, content_type="application/json", json=body)

    page.route(f"**/zenodo/reproductions/{rid}**", answer)
    sign_in_page(page, vre, "bob", next_path=f"/app/reproductions/{rid}")
    expect(page.get_by_test_id("verdict")).to_have_text("Differs")
    explained = page.get_by_test_id("verdict-explained")
    expect(explained).to_contain_text("3 of 4 outputs differ")
    expect(explained).to_contain_text("plot.png")
    rows = page.get_by_role("table", name="Comparison of the outputs").get_by_test_id(
        "comparison-row"
    )
    expect(rows).to_have_count(4)
    fits = rows.filter(has_text="fitted-parameters")
    expect(fits.get_by_test_id("outcome")).to_have_text("No")
    expect(fits.get_by_test_id("columns")).to_contain_text("amplitude")
    expect(fits.get_by_test_id("columns")).to_contain_text("largest relative difference 0.031")
    expect(fits.get_by_test_id("columns")).to_contain_text("sigma_energy_resolution")
    expect(fits.get_by_test_id("columns")).to_contain_text("2.4e-5")
    text = rows.filter(has_text="summary.txt")
    text.get_by_text("Short text diff").click()
    expect(text.get_by_test_id("diff")).to_contain_text("+mean: 2.5")
    expect(text).to_contain_text("Size 40 B → 44 B")
    expect(rows.filter(has_text="sorted.txt").get_by_test_id("outcome")).to_have_text("Yes")
    expect(rows.filter(has_text="plot.png").get_by_test_id("outcome")).to_have_text("Missing")
    expect(page.get_by_test_id("repro-log")).to_contain_text("verdict: differs")
    page.screenshot(path=str(artifacts / f"45-reproduction-differs-{width}px.png"), full_page=True)
    assert horizontal_overflow(page) == 0
    if AXE.is_file():
        page.add_script_tag(path=str(AXE))
        result: dict[str, Any] = page.evaluate(
            """async () => await axe.run(document, {resultTypes: ["violations"]})"""
        )
        serious = [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == []
    context.close()
    assert errors == []


def test_a_running_reproduction_can_be_cancelled(
    browser: Browser, vre: Vre, artifacts: Path
) -> None:
    """While the re-run runs: its step in progress, the log, and Cancel, which ends it (the job's
    answers stood in for by the browser; cancelling for real is tested on the whole VRE)."""
    rid = str(uuid.uuid4())
    running = {**_differing(rid), "state": "running", "verdict": None, "files": [],
               "run_id": "5d0c1e2f-0000-4000-8000-0000000000aa", "finished_at": None}  # fmt: skip
    state: dict[str, Any] = {"job": running, "cancelled": 0}

    def answer(route: Route) -> None:
        if route.request.url.endswith("/logs"):
            route.fulfill(status=200, content_type="text/plain",
                          body="2026-12-07T08:00:01Z re-run submitted\n")  # fmt: skip
        elif route.request.url.endswith("/cancel") and route.request.method == "POST":
            state["cancelled"] += 1
            state["job"] = {**running, "state": "cancelled", "finished_at": "2026-12-07T08:01:00Z"}
            route.fulfill(status=200, content_type="application/json", json=state["job"])
        else:
            route.fulfill(status=200, content_type="application/json", json=state["job"])

    context = new_context(browser, vre)
    page = context.new_page()
    errors = console_errors(page)
    page.route(f"**/zenodo/reproductions/{rid}**", answer)
    sign_in_page(page, vre, "bob", next_path=f"/app/reproductions/{rid}")
    steps = page.get_by_test_id("repro-steps").locator("li")
    expect(steps.nth(0)).to_have_attribute("data-state", "done")
    expect(steps.nth(1)).to_have_attribute("data-state", "in progress")
    expect(steps.nth(2)).to_have_attribute("data-state", "waiting")
    expect(page.get_by_test_id("verdict")).to_have_text("Not finished yet")
    expect(page.get_by_test_id("repro-log")).to_contain_text("re-run submitted")
    page.screenshot(path=str(artifacts / "46-reproduction-running.png"), full_page=True)
    page.get_by_role("button", name="Cancel the reproduction").click()
    expect(page.get_by_test_id("verdict")).to_have_text("Cancelled")
    expect(steps.nth(1)).to_have_attribute("data-state", "cancelled")
    expect(page.get_by_role("button", name="Cancel the reproduction")).to_have_count(0)
    assert state["cancelled"] == 1
    context.close()
    assert errors == []
