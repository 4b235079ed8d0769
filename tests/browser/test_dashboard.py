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

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import (
    ZENODO_TOKENS,
    Vre,
    console_errors,
    expect_done,
    horizontal_overflow,
    new_context,
    overflowing_labels,
    sign_in,
)

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 120_000


def shot(page: Page, artifacts: Path, name: str) -> None:
    """Save a full-page screenshot of this step."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


class Session:
    """One person's first session: each step is photographed and checked for sideways
    scrolling (the page must fit the window at every width)."""

    def __init__(self, page: Page, artifacts: Path, width: int) -> None:
        self.page = page
        self.artifacts = artifacts
        self.suffix = "" if width == DEFAULT_WIDTH else f"-{width}px"
        self.overflows: list[str] = []

    def step(self, name: str) -> None:
        shot(self.page, self.artifacts, f"{name}{self.suffix}")
        wider = horizontal_overflow(self.page)
        if wider > 0:
            self.overflows.append(f"{name} ({self.page.url}): {wider} px too wide")


DEFAULT_WIDTH = 1366


@pytest.mark.parametrize("width", [DEFAULT_WIDTH, 390, 1920], ids=["1366px", "390px", "1920px"])
def test_alice_first_session_from_landing_page_to_provenance(
    browser: Browser, vre: Vre, artifacts: Path, tmp_path: Path, width: int
) -> None:
    """What a person sees after each action, at a laptop's, a phone's and a wide screen's width:
    no reload is ever needed, errors are in words, and nothing scrolls sideways."""
    context = new_context(browser, vre, width=width)
    page = context.new_page()
    errors = console_errors(page)
    session = Session(page, artifacts, width)
    slug = f"web-{uuid.uuid4().hex[:8]}"
    scope = f"proj.{slug}"
    nav = page.get_by_role("navigation", name="Dashboard")

    # 1. the landing page, and sign-in through its link
    page.goto("/")
    shot(page, artifacts, f"01-landing{session.suffix}")
    page.get_by_role("link", name=re.compile("^Sign in")).first.click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(vre.password("alice"))
    shot(page, artifacts, f"02-sign-in{session.suffix}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app")
    expect(page.get_by_test_id("username")).to_have_text("Alice")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    session.step("03-dashboard")

    # 2. a private project: the short name is checked as it is typed, the scope previewed
    nav.get_by_role("link", name="Projects").click()
    page.get_by_label("Name", exact=True).fill("Browser test project")
    expect(page.get_by_test_id("slug-preview")).to_contain_text("proj.browser-test-project")
    page.get_by_label("Short name (slug)").fill("Bad slug")
    expect(page.get_by_test_id("slug-hint")).to_contain_text("lower-case")
    page.get_by_label("Short name (slug)").fill(slug)
    expect(page.get_by_test_id("slug-preview")).to_contain_text(f"proj.{slug}")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"**/app/projects/{slug}")
    expect(page.get_by_role("heading", name="Browser test project", level=1)).to_be_visible()
    expect(page.get_by_text("owner").first).to_be_visible()
    session.step("04-project")

    # 3. upload into the project's scope with metadata: the progress bar completes, the
    # checksums show, the listing and the project's quota show the file without a reload
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB: several progress events
    source = tmp_path / "events.dat"
    source.write_bytes(data)
    page.get_by_role("link", name="Open the Data Lake scope").click()
    page.wait_for_url(f"**/app/datalake/{scope}")
    expect(page.get_by_test_id("empty")).to_contain_text("This scope is empty")
    page.get_by_label("Files (choose one or several, any size)").set_input_files(str(source))
    page.get_by_label("Folder in the scope (optional)").fill("inputs")
    page.get_by_label("Metadata for these files").fill("datatype=raw\nrun_number=42")
    page.get_by_role("button", name="Upload", exact=True).click()
    upload = page.get_by_test_id("upload").first
    expect(upload.get_by_test_id("upload-state")).to_have_text("uploaded", timeout=60_000)
    progress = upload.locator("progress")
    expect(progress).to_have_attribute("value", str(len(data)))
    expect(progress).to_have_attribute("max", str(len(data)))
    expect(upload.get_by_test_id("adler32")).to_have_text(f"{zlib.adler32(data):08x}")
    contents = page.get_by_role("table", name=f"Contents of {scope}")
    expect(contents.get_by_role("link", name="inputs/events.dat")).to_be_visible()
    # the Data Lake counts usage in a background pass: the figure follows within seconds
    quota = page.get_by_test_id("quota").filter(has_text="used by 1 file")
    expect(quota).to_have_count(1, timeout=45_000)
    expect(page.get_by_role("heading", name=f"Quota of the project {slug}")).to_be_visible()
    session.step("05-uploaded")

    # 4. a name without wildcards finds nothing, and the page offers the wildcard search
    page.get_by_label("Name (with * wildcards)").fill("events.dat")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r".*name=events\.dat.*"))
    expect(page.get_by_test_id("empty")).to_contain_text("Nothing matches the name")
    page.get_by_role("link", name="search for *events.dat*").click()
    expect(contents.get_by_role("link", name="inputs/events.dat")).to_be_visible()
    # a broken metadata condition is explained with the form's own words
    page.get_by_label("Metadata conditions, one per line").fill("datatype")
    page.get_by_role("button", name="Search", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Metadata condition 1")
    expect(alert).to_contain_text("key=value")
    expect(alert).not_to_contain_text("query.")
    expect(alert).not_to_contain_text("Invalid name")
    expect(page.get_by_test_id("empty")).to_have_count(0)
    session.step("06-search-explained")
    page.get_by_label("Metadata conditions, one per line").fill("run_number>=40")
    page.get_by_label("Name (with * wildcards)").fill("inputs/event*")
    page.get_by_role("button", name="Search", exact=True).click()
    contents.get_by_role("link", name="inputs/events.dat").click()
    expect(page.get_by_test_id("did")).to_have_text(f"{scope}:inputs/events.dat")

    # 5. the file: who added it (not the Data Lake's service account), its metadata edited in
    # place, downloaded back
    expect(page.get_by_test_id("origin")).to_have_text("alice (uploaded)")
    metadata = page.get_by_role("table", name="Metadata of inputs/events.dat")
    expect(metadata.get_by_role("row", name=re.compile("datatype raw"))).to_be_visible()
    metadata.get_by_role("button", name="Edit datatype").click()
    page.get_by_label(re.compile("^Set metadata")).fill("datatype=calibrated\nenergy=high")
    page.get_by_role("button", name="Save metadata").click()
    expect(metadata.get_by_role("row", name=re.compile("datatype calibrated"))).to_be_visible()
    expect(metadata.get_by_role("row", name=re.compile("energy high"))).to_be_visible()
    metadata.get_by_role("button", name="Remove energy").click()
    expect(metadata.get_by_role("row", name=re.compile("energy"))).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert Path(download.value.path()).read_bytes() == data
    session.step("07-file")

    # 6. a dataset: it appears at once, and attaching the file (answered 204) shows it inside
    page.get_by_role("link", name=scope, exact=True).first.click()
    page.get_by_label("Name", exact=True).fill("bundle")
    page.get_by_role("button", name="Create", exact=True).click()
    expect_done(page, "Created the dataset bundle.", timeout=60_000)
    contents.get_by_role("link", name="bundle", exact=True).click()
    expect(page.get_by_test_id("empty")).to_contain_text("Empty")
    page.get_by_label(re.compile("^Attach files or datasets")).fill("inputs/events.dat")
    page.get_by_role("button", name="Attach", exact=True).click()
    expect_done(page, "Attached 1 item")
    content = page.get_by_role("table", name="Content of bundle")
    expect(content.get_by_role("link", name="inputs/events.dat")).to_be_visible()
    expect(page.get_by_test_id("empty")).to_have_count(0)
    session.step("08-dataset")

    # 7. a workflow on the file: the run belongs to the file's project without being told
    content.get_by_role("link", name="inputs/events.dat").click()
    page.get_by_role("link", name="Run a workflow on it").click()
    page.wait_for_url("**/app/workflows?input=*")
    expect(page.get_by_role("button", name=f"Remove {scope}:inputs/events.dat")).to_be_visible()
    expect(page.get_by_label("Project")).to_have_value(slug)
    page.get_by_label("Run name (optional)").fill("browser run")
    expect(page.get_by_test_id("run-name-help")).to_contain_text("No spaces")
    page.get_by_label("Run name (optional)").fill("browser-run")
    if width == DEFAULT_WIDTH:
        # Checked once: the other widths are about layout, and the validator (REANA's code in
        # its own environment) sometimes answers 503 on a loaded machine (a workflows issue).
        page.get_by_role("button", name="Check the reana.yaml").click()
        expect(page.get_by_test_id("spec-view")).to_contain_text("The reana.yaml is valid")
    session.step("09-submit")
    page.get_by_role("button", name="Submit the run").click()
    page.wait_for_url("**/app/runs/*")

    # 8. its logs follow until it finishes; then every step header says how it ended
    expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=RUN_TIMEOUT_MS)
    log = page.get_by_test_id("log")
    expect(log).to_contain_text("events.dat")
    expect(page.get_by_test_id("log-state")).to_have_text(re.compile("The run has ended"))
    expect(log).to_contain_text("(finished)")
    expect(log).not_to_contain_text("(running)")
    session.step("10-run-finished")

    # 9. its output is in the project's scope, made by the run
    outputs = page.get_by_test_id("outputs")
    output = outputs.get_by_role("link", name=re.compile(rf"^{re.escape(scope)}:.*summary\.txt$"))
    output.click()
    expect(page.get_by_test_id("did")).to_have_text(re.compile(rf"^{re.escape(scope)}:"))
    expect(page.get_by_test_id("origin")).to_contain_text("the run browser-run")
    session.step("11-output")

    # 10. the provenance picture: output ← run ← input, the output generated by the run (not
    # uploaded by alice), every label inside its box, every node a link
    page.get_by_role("link", name="Where it came from (provenance)").click()
    svg = page.get_by_test_id("provenance-svg")
    expect(svg).to_be_visible(timeout=40_000)  # provenance events arrive within seconds
    expect(svg.locator(f'[data-node="did:{scope}:inputs/events.dat"]')).to_be_visible()
    run_node = svg.locator('[data-node^="run:"]')
    expect(run_node).to_have_count(1)
    expect(run_node.get_by_test_id("node-label")).to_have_text("browser-run")
    expect(svg.locator('[data-node^="upload:"]')).to_have_count(1)  # the input's own upload
    assert svg.get_by_test_id("provenance-edge").count() >= 3
    assert overflowing_labels(page) == []
    session.step("12-provenance")
    # the input's "made from it" picture: the run, its outputs, the dataset they were added to
    svg.locator(f'[data-node="did:{scope}:inputs/events.dat"]').click()
    expect(page.get_by_test_id("did")).to_have_text(f"{scope}:inputs/events.dat")
    page.get_by_role("link", name="What was made from it").click()
    expect(svg.locator('[data-node^="run:"]')).to_have_count(1, timeout=40_000)
    expect(svg.locator('[data-node*="summary.txt"]')).to_have_count(1)
    assert overflowing_labels(page) == []
    session.step("13-provenance-down")
    run_node = svg.locator('[data-node^="run:"]')
    run_node.focus()  # keyboard: the node is a focusable link
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/runs/*")
    expect(page.get_by_test_id("run-status")).to_have_text("finished")

    # 11. one search box across everything
    page.get_by_label("Search everything").fill("events")
    page.get_by_label("Search everything").press("Enter")
    page.wait_for_url("**/app/search?q=events")
    hit = page.get_by_test_id("hits-did").locator(f'[title="{scope}:inputs/events.dat"] a')
    expect(hit).to_have_text("inputs/events.dat")
    session.step("14-search")
    hit.click()
    expect(page.get_by_test_id("did")).to_have_text(f"{scope}:inputs/events.dat")

    context.close()
    assert session.overflows == []
    assert errors == []


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
    shot(page, artifacts, "20-bob-refused")
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
    shot(page, artifacts, "21-broken-reana-yaml")
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
    shot(page, artifacts, "23-codemeta-problems")


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
    shot(page, artifacts, "24-log-following")
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
    shot(page, artifacts, "25-zenodo-doi")


def test_invitations_show_their_outcome_without_reload(
    browser: Browser, vre: Vre, artifacts: Path
) -> None:
    """alice invites a misspelt name (the page says nobody of that name has signed in) and bob;
    bob accepts, and the project is at once in his list."""
    slug = f"inv-{uuid.uuid4().hex[:8]}"
    with vre.api("alice") as alice:
        created = alice.post("/projects", json={"name": "Invitation check", "slug": slug})
        assert created.status_code == 201, created.text
    bob_context = new_context(browser, vre)
    bob = bob_context.new_page()
    bob_errors = console_errors(bob)
    sign_in(bob, vre, "bob", next_path="/app/projects")  # bob has used the VRE
    expect(bob.get_by_role("link", name="Invitation check")).to_have_count(0)

    alice_context = new_context(browser, vre)
    page = alice_context.new_page()
    errors = console_errors(page)
    sign_in(page, vre, "alice", next_path=f"/app/projects/{slug}")
    typo = f"bbo{uuid.uuid4().hex[:4]}"
    page.get_by_label("Invite a user (username)").fill(typo)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_test_id("invitee-unknown")).to_contain_text(f"Nobody called “{typo}”")
    expect(page.get_by_text(f"{typo} as member: pending")).to_be_visible()
    page.get_by_label("Invite a user (username)").fill("bob")
    page.get_by_role("button", name="Send invitation").click()
    expect_done(page, "Invited bob")
    expect(page.get_by_test_id("invitee-unknown")).to_have_count(0)
    expect(page.get_by_text("bob as member: pending")).to_be_visible()
    shot(page, artifacts, "26-invitations-sent")

    # bob's page learns of the invitation on its next visit; accepting shows the project at once
    bob.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Overview").click()
    bob.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Projects").click()
    card = bob.get_by_role("heading", name="Invitations for you")
    expect(card).to_be_visible()
    bob.get_by_role("button", name="Accept").click()
    expect_done(bob, "You joined Invitation check")
    expect(
        bob.get_by_role("table", name="Projects").get_by_role("link", name="Invitation check")
    ).to_be_visible()
    shot(bob, artifacts, "27-invitation-accepted")
    # and on alice's side the member list shows bob after her next look
    page.reload()
    expect(page.get_by_role("table", name="Members of Invitation check")).to_contain_text("bob")
    alice_context.close()
    bob_context.close()
    assert errors == []
    assert bob_errors == []


def test_zenodo_missing_is_shown_before_the_user_tries(
    page: Page, vre: Vre, artifacts: Path
) -> None:
    """A deployment whose Zenodo is down (as /readyz reports it: the browser's /readyz answer is
    replaced here, the rest of the VRE is real) says so on the Zenodo page instead of asking
    for a token, with the reason in words and nothing about routes or exceptions."""
    ready = httpx.get(vre.url + "/readyz").json()
    for dependency in ready["dependencies"]:
        if dependency["name"] == "zenodo.zenodo":
            dependency.update(up=False, reason="Zenodo unreachable: ConnectError")
    page.route(
        "**/readyz",
        lambda route: route.fulfill(status=200, content_type="application/json", json=ready),
    )
    sign_in(page, vre, "alice", next_path="/app/zenodo")
    unavailable = page.get_by_test_id("unavailable")
    expect(unavailable).to_contain_text("Importing and publishing are unavailable")
    expect(unavailable).to_contain_text("cannot reach Zenodo")
    expect(page.get_by_label("Personal access token")).to_have_count(0)
    expect(page.get_by_role("button", name="Create the deposition")).to_have_count(0)
    nav = page.get_by_role("navigation", name="Dashboard")
    expect(nav.get_by_role("link", name="Zenodo (unavailable)")).to_be_visible()
    text = page.locator("main").inner_text()
    for raw in ("ConnectError", "PUT /zenodo", "(503)", "list_depositions"):
        assert raw not in text, text
    shot(page, artifacts, "28-zenodo-unavailable")


def test_ivoa_query_lands_in_the_project(page: Page, vre: Vre, artifacts: Path) -> None:
    """The astronomical archives page: a TAP service's tables, a query whose result table lands
    in the project's scope (shown at once, with its rows), and a refused query in words."""
    with vre.api("alice") as alice:
        if not alice.get("/ivoa/services").json()["items"]:
            pytest.skip("DaCHS is not installed (make system-deps): no VO service to query")
    slug = f"vo-{uuid.uuid4().hex[:8]}"
    scope = f"proj.{slug}"
    with vre.api("alice") as alice:
        created = alice.post("/projects", json={"name": "Archive check", "slug": slug})
        assert created.status_code == 201, created.text
    errors = console_errors(page)
    sign_in(page, vre, "alice", next_path="/app")
    page.get_by_role("navigation", name="Dashboard").get_by_role(
        "link", name="Archives (IVOA)"
    ).click()
    expect(
        page.get_by_role("heading", name="Astronomical archives (IVOA)", level=1)
    ).to_be_visible()
    expect(page.get_by_test_id("vo-services")).to_contain_text("DaCHS test TAP")
    page.get_by_label("Find tables").fill("vrecat")
    page.get_by_role("button", name="Show tables").click()
    page.get_by_role("button", name="Query it (vrecat.main)").click()
    expect(page.get_by_label("ADQL query")).to_have_value("SELECT TOP 100 * FROM vrecat.main")
    page.get_by_label("Results go to").select_option(f"project:{slug}")
    page.get_by_label("ADQL query").fill(
        "SELECT TOP 25 id, ra, dec, mag FROM vrecat.main ORDER BY id"
    )
    page.get_by_label("File name (optional)").fill("bright.vot")
    page.get_by_role("button", name="Run the query").click()
    result = page.get_by_test_id("vo-result")
    expect(result).to_contain_text("25 rows", timeout=60_000)
    expect(result.get_by_role("link")).to_have_accessible_name(f"{scope}:bright.vot")
    queries = page.get_by_role("table", name="Your queries")
    expect(queries.get_by_text("COMPLETED").first).to_be_visible()
    shot(page, artifacts, "29-ivoa-query")
    # a query the service refuses: its own words, under a title for a person
    page.get_by_label("ADQL query").fill("SELECT nonsense FROM nowhere.at_all")
    page.get_by_label("File name (optional)").fill("")
    page.get_by_role("button", name="Run the query").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(re.compile("refused|answered with an error"), timeout=60_000)
    expect(alert).not_to_contain_text("body.")
    shot(page, artifacts, "30-ivoa-refused")
    # the result is a Data Lake file of the project, made by the query
    page.goto(f"/app/datalake/{scope}/bright.vot")
    expect(page.get_by_test_id("did")).to_have_text(f"{scope}:bright.vot")
    expect(page.get_by_role("table", name="Metadata of bright.vot")).to_contain_text("ivoa_service")
    assert errors == []
