"""Fuzzing (issues 9 and 19): schemathesis with every check and every phase against the running
VRE, with the merged OpenAPI document as the contract.

The whole VRE runs as the embedded mode builds it (tests/support/running_vre.py: the five
services mounted in the gateway, a real Rucio from the session's ``rucio_server``, the Zenodo
stand-in, a configured TAP service that is down) on a real port. The official ``schemathesis``
command runs against it with alice's token: checks ``all`` (server errors, status codes,
content types, headers and bodies against the schemas, negative data rejected, positive data
accepted, missing headers, unsupported methods and their ``Allow``, use after free, resources
available after creation, ignored auth) plus the VRE's own ``problem_on_error``
(tests/support/fuzz_hooks.py), in the phases ``examples``, ``coverage``, ``fuzzing`` and
``stateful`` (which follows the document's OpenAPI links).

The test fails on any finding that is not listed in ``ACCEPTED_FINDINGS`` — the one place
where a known disagreement between the document and the server is written down, with its
reason. Bounded: a fixed seed, ``MAX_EXAMPLES`` per operation, no shrinking, and a time budget
(``MAX_SECONDS``) for the phases that would otherwise repeat.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.zenodo.tests.support.standin import ZenodoStandIn, served_standin
from tests.support.running_vre import ZENODO_TOKENS, running_vre
from vre_common.testing import TestIssuer
from vre_rucio_local import LocalRucio

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "tests" / "support" / "fuzz_hooks.py"
SEED = 20240917
MAX_EXAMPLES = int(os.environ.get("VRE_FUZZ_MAX_EXAMPLES", "3"))
MAX_SECONDS = int(os.environ.get("VRE_FUZZ_MAX_SECONDS", "90"))
# Two runs, each with its own time budget, so that a slow machine still reaches every phase:
# the schema's examples and boundaries first, then random inputs and link-following sequences.
PHASE_GROUPS = ("examples,coverage", "fuzzing,stateful")

# operationId → why schemathesis does not call it.
EXCLUDED: dict[str, str] = {
    "workflows_create_run": (
        "runs generated workflow steps: in the embedded mode a step whose image is missing "
        "executes its commands on the host, so fuzzed specs would run arbitrary shell commands "
        "(and each run is long-running); covered by test_bad_input and the workflows suite"
    ),
    "workflows_rerun_run": "same as workflows_create_run: starts a run on the host",
    "workflows_get_run_logs": (
        "follow=true keeps the stream open until the run ends (by design, a long poll)"
    ),
    "workflows_put_reana_credentials": (
        "verifies the credentials by calling the user-supplied REANA URL: generated URLs "
        "mean DNS look-ups and connect timeouts to arbitrary hosts"
    ),
    "datalake_upload_file": (
        "streaming upload route exempt from the body limit; generated bodies would be "
        "written to the RSE; covered by test_bad_input and the datalake streaming suite"
    ),
}


# (finding, "METHOD /path" or "*") → why it is accepted. The one place; nothing else may fail.
ACCEPTED_FINDINGS: dict[tuple[str, str], str] = {
    ("Server error", "GET /ivoa/services/{name}/tables"): (
        "the test's TAP service 'archive' is down on purpose: the documented 503 problem is "
        "the right answer, and not_a_server_error counts every 5xx"
    ),
    ("Schema-valid request rejected", "GET /projects/-/access"): (
        "exactly one of the query parameters project and scope: OpenAPI cannot state "
        "exclusive query parameters (its description says so)"
    ),
    ("Schema-valid request rejected", "GET /zenodo/records"): (
        "Zenodo serves only the first 10,000 hits of a search: page × size beyond that is "
        "refused with a 422 that says so (a bound on a product of two parameters)"
    ),
    ("Schema-valid request rejected", "POST /catalogue/software"): (
        "a codemeta.json is checked against the OSSR's rules (required keys, ORCID and date "
        "forms, SPDX licences, version pairs), far more than its JSON Schema can state; each "
        "problem is listed with what to write instead (issue 19, item 1)"
    ),
    ("Schema-valid request rejected", "POST /workflows/validate"): (
        "a reana.yaml is judged by REANA's own validator (reana-commons) and ours (workspace "
        "paths); the schema states the document's shape only (issue 19, item 2)"
    ),
    ("Schema-valid request rejected", "PUT /zenodo/credentials"): (
        "the token is verified with Zenodo before it is stored: a well-formed token that "
        "Zenodo does not know is refused, as it should be"
    ),
    ("Schema-valid request rejected", "POST /zenodo/depositions"): (
        "a deposition's metadata follows Zenodo's deposit rules (creators' name forms, licence "
        "ids, dates, upload types with their sub-types), checked before Zenodo is called"
    ),
    ("Schema-valid request rejected", "POST /zenodo/depositions/{deposition_id}/versions"): (
        "as POST /zenodo/depositions: Zenodo's deposit metadata rules"
    ),
    ("Schema-valid request rejected", "POST /ivoa/queries"): (
        "the query is checked against the service's type (ADQL for TAP, cone for SCS, SIA "
        "parameters) and its destination needs exactly one of scope and project; not stated "
        "in the ivoa service's schema yet"
    ),
    ("Schema-valid request rejected", "GET /datalake/files/{scope}/{name}"): (
        "a dataset or container is not a file: GET /files/... answers 422 pointing at "
        "/dids/{scope}/{name}/archive (a rule on the DID's type, known only once it is found)"
    ),
    ("Schema-valid request rejected", "POST /datalake/rules"): (
        "a rule's activity must be one of the Rucio server's configured activities (a "
        "deployment's own list; Rucio answers with it, passed on as a 422)"
    ),
    ("Schema-valid request rejected", "GET /datalake/rses"): (
        "expression is Rucio's RSE-expression language (set operations, attribute filters); "
        "Rucio parses it and its error is passed on as a 422; not a regular language"
    ),
    ("Schema-valid request rejected", "POST /projects"): (
        "without a slug the slug is derived from the name; a name with nothing to derive one "
        "from (e.g. '0') needs an explicit slug: a rule across two fields"
    ),
    ("Schema-valid request rejected", "Stateful tests"): (
        "the stateful phase reports under this one label; the calls it found rejected are "
        "those accepted above (e.g. the Zenodo result window of GET /zenodo/records; see "
        "artifacts/schemathesis-fuzzing-stateful.txt)"
    ),
    ("Schema-valid request rejected", "PATCH /datalake/rules/{rule_id}"): (
        "21012.0 is an integer to JSON Schema, but the VRE refuses a number written with a "
        "fraction where it asks for an integer (issue 19: no float → int coercion, so a "
        "lifetime is never silently truncated)"
    ),
    ("Schema-valid request rejected", "POST /datalake/dids/{scope}"): (
        "as PATCH /datalake/rules/{rule_id}: a lifetime written as 1268815.0 is refused, "
        "not truncated"
    ),
    ("Schema-valid request rejected", "POST /datalake/resolve"): (
        "rse_expression is Rucio's RSE-expression language, as for GET /datalake/rses: an "
        "expression that selects no RSE is a 422 that says so"
    ),
    ("Schema-valid request rejected", "POST /datalake/scopes"): (
        "quota_bytes is bounded by 2^63-1 in the schema; 9223372036854775999 passes that "
        "bound only where a validator reads JSON numbers as floats (2^63-1 rounds up): the "
        "server compares integers exactly"
    ),
    ("Schema-valid request rejected", "POST /projects/{slug}/groups"): (
        "role shares the members' enum; a group may hold every role but owner (a project "
        "always has a person as owner): refused with a 422 naming maintainer as the highest"
    ),
    ("Schema-violating request accepted", "GET /catalogue/software/search"): (
        "query values are text: license=false is a licence filter that matches nothing and "
        "answers an empty page, which is right for a search"
    ),
    ("Schema-violating request accepted", "GET /datalake/rses"): (
        "the generated expression made the query string longer than 8 KiB: the gateway "
        "refuses it with 414 before the parameter is looked at (a refusal, not an acceptance)"
    ),
    ("Schema-violating request accepted", "Stateful tests"): (
        "the stateful phase reports under this one label; what it found is the 414 of "
        "GET /datalake/rses above, on another route: generated query values longer than "
        "8 KiB (GET /zenodo/records?q=…) are refused by the gateway before any parameter is "
        "looked at, and schemathesis does not count 414 as a refusal"
    ),
    ("Created resource not found", "Stateful tests"): (
        "the link from POST /projects gives POST /projects/{slug}/transfer the new project, "
        "and schemathesis makes up the member_id: the 404 says no such member in that "
        "project (the project itself was found)"
    ),
    ("Schema-valid request rejected", "POST /provenance/events"): (
        "run events must name their activity run:<id> (a rule on the pair kind/activity) and "
        "services may post only events of their own; not expressible per field"
    ),
}


@pytest.fixture(scope="module")
def zenodo_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenodoStandIn]:
    with served_standin(tmp_path_factory.mktemp("fuzz-zenodo"), ZENODO_TOKENS) as standin:
        yield standin


@pytest.fixture(scope="module")
def vre(
    rucio_server: LocalRucio,
    zenodo_standin: ZenodoStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, TestIssuer]]:
    """The gateway with the five services mounted, on a real port (as test_e2e_chain)."""
    with running_vre(tmp_path_factory.mktemp("vre-fuzz"), rucio_server, zenodo_standin) as vre:
        yield vre


def _keys(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(finding title, "METHOD /path") for each operation of a failure (or an error) of the
    JSON run report."""
    title = str(item.get("title") or item.get("type") or "?")
    return [(title, str(operation)) for operation in item.get("operations") or ["*"]]


def _accepted(key: tuple[str, str]) -> bool:
    check, operation = key
    return (check, operation) in ACCEPTED_FINDINGS or (check, "*") in ACCEPTED_FINDINGS


@pytest.mark.timeout(MAX_SECONDS * 6 + 600)
def test_schemathesis_finds_nothing_unlisted(vre: tuple[str, TestIssuer], tmp_path: Path) -> None:
    url, issuer = vre
    # The document, fetched once with room for a loaded machine (schemathesis waits 10 s).
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{url}/openapi.json", timeout=120).content)
    token = issuer.token("alice")
    found: list[tuple[str, str]] = []
    outputs: list[str] = []
    for group in PHASE_GROUPS:
        data, output = _run_schemathesis(document, url, token, group, tmp_path)
        outputs.append(output)
        # The run went through its phases (a schema that did not load is no pass).
        assert data["complete"], output[-3000:]
        assert data["test_cases"]["generated"] > 0, data["test_cases"]
        for phase in group.split(","):
            assert data["phases"][phase]["status"] != "skip", (
                phase,
                data["phases"],
                output[-2000:],
            )
        found += [key for item in [*data["failures"], *data["errors"]] for key in _keys(item)]
    unlisted = sorted({key for key in found if not _accepted(key)})
    assert not unlisted, "\n".join(f"{check} — {operation}" for check, operation in unlisted) + (
        "\n\n" + "\n".join(o[-4000:] for o in outputs)
    )


def _run_schemathesis(
    document: Path, url: str, token: str, phases: str, folder: Path
) -> tuple[dict[str, Any], str]:
    """One ``schemathesis run`` over ``phases``; its JSON report and its output."""
    name = phases.replace(",", "-")
    report = folder / f"report-{name}.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(document),
        "--url",
        url,
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--seed",
        str(SEED),
        "--no-shrink",
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--continue-on-failure",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    for operation in EXCLUDED:
        command += ["--exclude-operation-id", operation]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=folder,  # schemathesis keeps its own files (.schemathesis/) where it runs
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        timeout=MAX_SECONDS * 3 + 300,
        check=False,
    )
    output = run.stdout + run.stderr
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / f"schemathesis-{name}.txt").write_text(output)
    assert report.exists(), output[-3000:]
    data: dict[str, Any] = json.loads(report.read_text())
    (artifacts / f"schemathesis-{name}.json").write_text(json.dumps(data, indent=1))
    return data, output
