"""The researcher's dashboard in a real browser, against the embedded VRE.

alice signs in on the landing page, creates a project, uploads a file and watches its progress
bar complete, finds it, submits a workflow on it, follows its logs until it finishes, opens the
output and looks at the provenance picture; bob is refused alice's private project; a broken
reana.yaml shows its errors next to their lines. Every step leaves a screenshot in
artifacts/browser/.
"""

from __future__ import annotations

import re
import uuid
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import ZENODO_TOKENS, Vre, sign_in

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 120_000


def shot(page: Page, artifacts: Path, name: str) -> None:
    """Save a full-page screenshot of this step."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_alice_from_landing_page_to_provenance(
    page: Page, vre: Vre, artifacts: Path, tmp_path: Path
) -> None:
    slug = f"web-{uuid.uuid4().hex[:8]}"
    scope = f"proj.{slug}"

    # 1. the landing page, and sign-in through its link
    page.goto("/")
    shot(page, artifacts, "01-landing")
    page.get_by_role("link", name=re.compile("^Sign in")).first.click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(vre.password("alice"))
    shot(page, artifacts, "02-sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app")
    expect(page.get_by_test_id("username")).to_have_text("Alice")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    shot(page, artifacts, "03-dashboard")

    # 2. a private project
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Projects").click()
    page.get_by_label("Name", exact=True).fill("Browser test project")
    page.get_by_label("Short name (slug)").fill(slug)
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"**/app/projects/{slug}")
    expect(page.get_by_role("heading", name="Browser test project", level=1)).to_be_visible()
    expect(page.get_by_text("owner").first).to_be_visible()
    shot(page, artifacts, "04-project")

    # 3. upload into the project's scope: the progress bar completes, checksums are shown
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB: several progress events
    source = tmp_path / "events.dat"
    source.write_bytes(data)
    page.get_by_role("link", name="Open the Data Lake scope").click()
    page.wait_for_url(f"**/app/datalake/{scope}")
    page.get_by_label("Files (choose one or several, any size)").set_input_files(str(source))
    page.get_by_label("Folder in the scope (optional)").fill("inputs")
    page.get_by_role("button", name="Upload", exact=True).click()
    upload = page.get_by_test_id("upload").first
    expect(upload.get_by_test_id("upload-state")).to_have_text("uploaded", timeout=60_000)
    progress = upload.locator("progress")
    expect(progress).to_have_attribute("value", str(len(data)))
    expect(progress).to_have_attribute("max", str(len(data)))
    expect(upload.get_by_test_id("adler32")).to_have_text(f"{zlib.adler32(data):08x}")
    shot(page, artifacts, "05-uploaded")

    # 4. find it by name, open it, download it back
    page.get_by_label("Name (with * wildcards)").fill("inputs/event*")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*name=inputs%2Fevent.*"))
    page.get_by_role("table", name=f"Contents of {scope}").get_by_role(
        "link", name="inputs/events.dat"
    ).click()
    expect(page.get_by_test_id("did")).to_have_text(f"{scope}:inputs/events.dat")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert Path(download.value.path()).read_bytes() == data
    shot(page, artifacts, "06-found")

    # 5. a workflow on it (the dashboard's own example reana.yaml), in the project
    page.get_by_role("link", name="Run a workflow on it").click()
    page.wait_for_url("**/app/workflows?input=*")
    expect(page.get_by_role("button", name=f"Remove {scope}:inputs/events.dat")).to_be_visible()
    page.get_by_label("Project").select_option(slug)
    page.get_by_label("Run name (optional)").fill("browser-run")
    page.get_by_role("button", name="Check the reana.yaml").click()
    expect(page.get_by_test_id("spec-view")).to_contain_text("The reana.yaml is valid")
    shot(page, artifacts, "07-submit")
    page.get_by_role("button", name="Submit the run").click()
    page.wait_for_url("**/app/runs/*")

    # 6. its logs follow until it finishes
    expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=RUN_TIMEOUT_MS)
    log = page.get_by_test_id("log")
    expect(log).to_contain_text("events.dat")
    expect(page.get_by_test_id("log-state")).to_have_text(re.compile("The run has ended"))
    shot(page, artifacts, "08-run-finished")

    # 7. its output is in the Data Lake
    outputs = page.get_by_test_id("outputs")
    output = outputs.get_by_role("link", name=re.compile(rf"^{re.escape(scope)}:.*summary\.txt$"))
    output.click()
    expect(page.get_by_test_id("did")).to_have_text(re.compile(rf"^{re.escape(scope)}:"))
    shot(page, artifacts, "09-output")

    # 8. the provenance picture: output ← run ← input, every node a link
    page.get_by_role("link", name="Where it came from (provenance)").click()
    svg = page.get_by_test_id("provenance-svg")
    expect(svg).to_be_visible(timeout=40_000)  # provenance events arrive within seconds
    expect(svg.locator(f'[data-node="did:{scope}:inputs/events.dat"]')).to_be_visible()
    run_node = svg.locator('[data-node^="run:"]')
    expect(run_node).to_have_count(1)
    assert svg.get_by_test_id("provenance-edge").count() >= 2
    shot(page, artifacts, "10-provenance")
    run_node.focus()  # keyboard: the node is a focusable link
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/runs/*")
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    shot(page, artifacts, "11-provenance-node-opened")


def test_bob_is_refused_alices_private_project(page: Page, vre: Vre, artifacts: Path) -> None:
    slug = f"priv-{uuid.uuid4().hex[:8]}"
    with vre.api("alice") as alice:
        created = alice.post("/projects", json={"name": "Alice only", "slug": slug})
        assert created.status_code == 201, created.text
        assert created.json()["visibility"] == "private"
    sign_in(page, vre, "bob", next_path=f"/app/projects/{slug}")
    refused = page.get_by_test_id("refused")
    expect(refused).to_contain_text("You cannot open this project")
    expect(page.get_by_role("alert")).to_contain_text("Project not found")
    expect(page.get_by_role("heading", name="Members")).to_have_count(0)
    shot(page, artifacts, "12-bob-refused")
    # signing out ends the session: the dashboard then offers to sign in again
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{vre.url}/")
    page.goto("/app/projects")
    expect(page.get_by_role("link", name="Sign in again")).to_have_attribute(
        "href", "/auth/login?next=%2Fapp%2Fprojects"
    )


BROKEN_SPEC = """\
version: 0.9.4
workflow:
  type: serial
  specification:
    steps:
      - name: count
        commands: wc -l data.txt
outputs:
  files: /etc/passwd
"""


def test_broken_reana_yaml_shows_errors_next_to_their_lines(
    page: Page, vre: Vre, artifacts: Path
) -> None:
    sign_in(page, vre, "alice", next_path="/app/workflows")
    page.get_by_label("reana.yaml", exact=True).fill(BROKEN_SPEC)
    page.get_by_role("button", name="Check the reana.yaml").click()
    view = page.get_by_test_id("spec-view")
    expect(view).to_contain_text("errors in the reana.yaml")
    errors = page.get_by_test_id("spec-error")
    lines = {errors.nth(i).get_attribute("data-line") for i in range(errors.count())}
    # commands is not a list (line 7), the step has no environment (line 6), outputs.files
    # is not a list (line 9)
    assert {"6", "7", "9"} <= lines, lines
    expect(view.locator('[data-line="7"]')).to_contain_text("commands")
    shot(page, artifacts, "13-broken-reana-yaml")
    # Submitting shows the same errors, and no run is created
    page.get_by_role("button", name="Submit the run").click()
    expect(page.get_by_role("alert").first).to_contain_text("The reana.yaml has errors")
    expect(page).to_have_url(re.compile(r".*/app/workflows$"))


def test_codemeta_problems_all_shown_at_once(page: Page, vre: Vre, artifacts: Path) -> None:
    sign_in(page, vre, "alice", next_path="/app/catalogue")
    page.get_by_label("codemeta.json", exact=True).fill(
        '{"@type": "SoftwareSourceCode", "name": "x", "license": "not-a-licence", "author": "me"}'
    )
    page.get_by_role("button", name="Register").click()
    problems = page.get_by_test_id("codemeta-errors")
    expect(problems).to_contain_text("problems in the codemeta.json")
    text = problems.inner_text()
    for key in ("@context", "description", "license", "author"):
        assert key in text, text
    assert problems.locator("li").count() >= 4
    shot(page, artifacts, "15-codemeta-problems")


def test_logs_follow_a_running_step(page: Page, vre: Vre, artifacts: Path, tmp_path: Path) -> None:
    """The log shows a step's first line while the step is still running (it waits for a file
    this test creates only after seeing that line), then the rest when it ends. (printf's
    octal spaces keep the echoed command lines from matching the expected output.)"""
    marker = tmp_path / "go"
    spec = f"""\
version: 0.9.4
inputs:
  parameters: {{}}
workflow:
  type: serial
  specification:
    steps:
      - name: wait
        environment: localhost/vre-browser-test/never-built:1
        commands:
          - printf 'waiting\\040for\\040the\\040test\\n'; until [ -f {marker} ]; do sleep 0.2; done
          - printf 'marker\\040seen\\n'
outputs:
  files: []
"""
    sign_in(page, vre, "alice", next_path="/app/workflows")
    page.get_by_label("reana.yaml", exact=True).fill(spec)
    page.get_by_role("button", name="Submit the run").click()
    page.wait_for_url("**/app/runs/*")
    log = page.get_by_test_id("log")
    expect(log).to_contain_text("waiting for the test", timeout=60_000)
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    expect(log).not_to_contain_text("marker seen")
    shot(page, artifacts, "16-log-following")
    marker.touch()
    expect(log).to_contain_text("marker seen", timeout=30_000)
    expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=30_000)


def test_zenodo_import_then_publish_shows_the_doi(page: Page, vre: Vre, artifacts: Path) -> None:
    slug = f"zen-{uuid.uuid4().hex[:8]}"
    scope = f"proj.{slug}"
    with vre.api("alice") as alice:
        created = alice.post("/projects", json={"name": "Zenodo round trip", "slug": slug})
        assert created.status_code == 201, created.text
    record = vre.zenodo.add_record({"limits.csv": b"mass,limit\n10,0.5\n"}, title="DM limits")
    sign_in(page, vre, "alice", next_path="/app/zenodo")

    # import a record by its DOI into the project's scope
    page.get_by_label("DOI or record number").fill(f"10.5281/zenodo.{record}")
    page.get_by_label("Into scope").select_option(scope)
    page.get_by_label("Dataset name (optional)").fill("dm-limits")
    page.get_by_role("button", name="Import").click()
    imports = page.get_by_role("table", name="Your imports")
    expect(imports.get_by_text("completed")).to_be_visible(timeout=30_000)
    expect(imports.get_by_role("link", name=f"{scope}:dm-limits")).to_be_visible()
    imported = imports.get_by_test_id("imported-did")
    expect(imported).to_have_text(re.compile(rf"^{re.escape(scope)}:.*limits\.csv$"))
    did = imported.inner_text()

    # publish the imported file with a DOI
    page.get_by_label("Personal access token").fill(next(iter(ZENODO_TOKENS)))
    page.get_by_role("button", name="Save token").click()
    expect(page.get_by_text("A personal token is registered")).to_be_visible()
    page.get_by_label("chosen Data Lake files").check()
    page.get_by_label("DIDs (scope:name, one per line)").fill(did)
    page.get_by_label("Title").fill("Limits, republished")
    page.get_by_label("Description").fill("Published from the dashboard test.")
    page.get_by_label("Creators").fill("Doe, Alice")
    page.get_by_role("button", name="Create the deposition").click()
    depositions = page.get_by_role("table", name="Your depositions")
    publish = depositions.get_by_role("button", name=re.compile("^Publish"))
    expect(publish).to_be_visible(timeout=30_000)
    publish.click()
    expect(depositions.get_by_test_id("doi")).to_have_text(re.compile(r"^10\.5281/zenodo\.\d+$"))
    shot(page, artifacts, "17-zenodo-doi")
