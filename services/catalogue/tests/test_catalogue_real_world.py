"""codemeta.json as the community writes it: each shape found in a real file is pinned here as a
minimal case written for this test (the comment names the repository and commit it comes from;
the files themselves are not copied). Each case is checked by our validator and, next to it, by
the OSSR's own tools (eossr's validator and its codemeta → Zenodo converter, run from
.venv-eossr by tests/support/eossr_witness.py), so both sides of every agreement and of every
recorded disagreement (docs/validation-corpus.md) are tested.
"""

from __future__ import annotations

import copy
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.catalogue.tests.support.helpers import Users
from vre_catalogue.services.codemeta import validate_codemeta

ROOT = Path(__file__).resolve().parents[3]
EOSSR_PYTHON = ROOT / ".venv-eossr" / "bin" / "python"
WITNESS = Path(__file__).parent / "support" / "eossr_witness.py"


def entry(**changes: Any) -> dict[str, Any]:
    """A valid OSSR entry in the shape the ESCAPE codemeta generator writes, with ``changes``
    (a value of ``None`` removes the key)."""
    document: dict[str, Any] = {
        "@context": "https://doi.org/10.5063/schema/codemeta-2.0",
        "@type": "SoftwareSourceCode",
        "name": "tiny-irf",
        "description": "Instrument response functions for a small neutrino detector.",
        "softwareVersion": "1.0.1",
        "datePublished": "2024-04-09",
        "license": "https://spdx.org/licenses/BSD-3-Clause",
        "codeRepository": "https://github.com/example/tiny-irf",
        "readme": "https://github.com/example/tiny-irf/blob/main/README.md",
        "issueTracker": "https://github.com/example/tiny-irf/issues",
        "keywords": ["neutrino", "IRF"],
        "author": [
            {
                "@type": "Person",
                "@id": "https://orcid.org/0000-0002-1825-0097",
                "givenName": "Josiah",
                "familyName": "Carberry",
                "email": "josiah@example.org",
            }
        ],
        "maintainer": {
            "@type": "Person",
            "givenName": "Josiah",
            "familyName": "Carberry",
            "email": "josiah@example.org",
        },
    }
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


@dataclass
class Case:
    """One real-world shape: what we answer and what eossr answers."""

    id: str
    document: dict[str, Any]
    ours_ok: bool
    eossr_valid: bool  # eossr's Codemeta.validate() raises nothing
    eossr_converts: bool  # eossr's codemeta2zenodo converts it
    errors: set[tuple[str, str]] = field(default_factory=set)  # (pointer, type) of ours
    warnings: set[tuple[str, str]] = field(default_factory=set)  # a subset of ours


CASES = [
    # The ESCAPE codemeta generator writes version and softwareVersion with the same value:
    # cta-observatory/lstmcpipe@31debd1c18f525b466e9af2ecf61df3804e17787,
    # cds-astro/tutorials@0084b8c6c45f127175fe6e2ddca79121516de0c8,
    # escape2020/codemeta2zenodo@35cef28cfce574b98f9d41306c3325125296ac44. Both accept.
    Case("equal-versions", entry(version="1.0.1"), True, True, True),
    # A pair that differs names two releases: eossr's validator lets it through, its converter
    # then refuses ("Multiple versions provided"); we say so at once, naming both values.
    Case(
        "different-versions",
        entry(version="1.0.0"),
        False,
        True,
        False,
        errors={("/version", "version_conflict")},
    ),
    # Only "version": AstarVienna/ScopeSim@fb34065ccf099a059e395511799f2d8b39b882d6,
    # KM3NeT/km3pipe@a1163b636b312dad38a3f19c97f85eadf9370e9f. The OSSR requires softwareVersion.
    Case(
        "version-only",
        entry(version="1.0.1", softwareVersion=None),
        False,
        False,
        True,
        errors={("/softwareVersion", "missing")},
    ),
    # AstarVienna/irdb@f0a5f306900970b0faa68fc497cc1dfe5f4d4d44 lacks four required keys.
    Case(
        "required-keys-missing",
        entry(softwareVersion=None, datePublished=None, maintainer=None, readme=None),
        False,
        False,
        True,
        errors={
            ("/softwareVersion", "missing"),
            ("/datePublished", "missing"),
            ("/maintainer", "missing"),
            ("/readme", "missing"),
        },
    ),
    # mlamo/momenta@dcb3de62bcd9127cfd28661999b9b916d5294624: an opensource.org license URL.
    Case(
        "opensource-org-license",
        entry(license="https://opensource.org/licenses/GPL-3.0"),
        True,
        True,
        True,
        warnings={("/license", "license_deprecated")},
    ),
    # License as a CreativeWork node (codemetapy and FACILE-RS write it; no astro file here did).
    # eossr's converter wants a URL string and refuses the object; the SPDX URL in it is clear.
    Case(
        "creativework-license",
        entry(license={"@type": "CreativeWork", "@id": "https://spdx.org/licenses/MIT"}),
        True,
        True,
        False,
    ),
    # Issue 19: "@type": ["SoftwareSourceCode", "SoftwareApplication"]. JSON-LD allows several
    # types; eossr compares @type with one string and refuses the list (no corpus file has it).
    Case(
        "type-list",
        entry(**{"@type": ["SoftwareSourceCode", "SoftwareApplication"]}),
        True,
        False,
        False,
    ),
    # An ORCID URL with a space: KM3NeT/Analysis-galactic-sources-CTA-KM3NeT@
    # 079dfa8851cb306a92a3727dc453b0cc7b1db9d0 (contributor), ctlearn-project/ctlearn@
    # a66138154d603bf932e1f475c212f038d4ab5e07 (author). eossr accepts it and its Zenodo
    # record silently loses the ORCID (checked below).
    Case(
        "orcid-with-space",
        entry(
            contributor=[
                {
                    "@type": "Person",
                    "@id": "https://orcid.org/ 0000-0002-1825-0097",
                    "givenName": "Ada",
                    "familyName": "Gál",
                }
            ]
        ),
        False,
        True,
        True,
        errors={("/contributor/0/@id", "orcid_invalid")},
    ),
    # DD-MM-YYYY dates: KM3NeT/KM3NeT-ARCA-irf@f90ae85fd274421aa2d537e00249ccd5674f137e.
    Case(
        "day-first-dates",
        entry(datePublished="09-04-2024", dateCreated="12-02-2024"),
        False,
        True,
        False,
        errors={("/datePublished", "date_invalid"), ("/dateCreated", "date_invalid")},
    ),
    # A maintainer given as text: KM3NeT/km3io@006e80f231c55919b038599d2f5d909fbf7101b7.
    Case(
        "maintainer-as-text",
        entry(maintainer="Josiah Carberry <josiah@example.org>"),
        False,
        True,
        False,
        errors={("/maintainer", "person_invalid")},
    ),
    # The maintainer as the author's ORCID URL: mlamo/momenta@dcb3de62bcd9127cfd28661999b9b9
    # 16d5294624. It names the author node of the same document; eossr's converter cannot
    # follow it. Accepted, with a warning that JSON-LD reads it as text.
    Case(
        "maintainer-as-reference",
        entry(maintainer="https://orcid.org/0000-0002-1825-0097"),
        True,
        True,
        False,
        warnings={("/maintainer", "reference_as_text")},
    ),
    # softwareVersion as a JSON number: gammapy/gammapy@962a2752d579b5bdba1cdae1d3e3cb2d94dabee0.
    Case(
        "version-as-number",
        entry(softwareVersion=0.19),
        False,
        True,
        False,
        errors={("/softwareVersion", "type_invalid")},
    ),
    # A mis-cased term in the same file ("issuetracker"): eossr refuses unknown keys; JSON-LD
    # would drop it silently, so it is an error here too, with the right spelling.
    Case(
        "miscased-term",
        entry(issuetracker="https://github.com/example/tiny-irf/issues", issueTracker=None),
        False,
        False,
        True,
        errors={("/issuetracker", "unknown_key")},
    ),
    # git+https code repositories: KM3NeT/km3io@006e80f2…, cds-astro/tutorials@0084b8c6….
    Case(
        "git-plus-https-repository",
        entry(codeRepository="git+https://git.km3net.de/km3py/km3io.git"),
        True,
        True,
        True,
    ),
]


def _witness(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(EOSSR_PYTHON), str(WITNESS)],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    verdicts: list[dict[str, Any]] = json.loads(result.stdout)
    return verdicts


@pytest.fixture(scope="module")
def eossr() -> dict[str, dict[str, Any]]:
    """eossr's verdict on every case, by case id (one run of the witness)."""
    if not EOSSR_PYTHON.exists():
        pytest.skip(".venv-eossr is missing: `make deps` builds it")
    verdicts = _witness([case.document for case in CASES])
    return {case.id: verdict for case, verdict in zip(CASES, verdicts, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_ours(case: Case) -> None:
    outcome = validate_codemeta(copy.deepcopy(case.document))
    assert outcome.ok is case.ours_ok, [e.model_dump() for e in outcome.errors]
    assert {(e.pointer, e.type) for e in outcome.errors} == case.errors
    assert case.warnings <= {(w.pointer, w.type) for w in outcome.warnings}
    for issue in [*outcome.errors, *outcome.warnings]:
        assert issue.fix, issue  # each problem says what to write instead


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_eossr(case: Case, eossr: dict[str, dict[str, Any]]) -> None:
    verdict = eossr[case.id]
    assert verdict["validate"]["valid"] is case.eossr_valid, verdict["validate"]
    assert verdict["convert"]["ok"] is case.eossr_converts, verdict["convert"]


def test_what_the_fixes_say() -> None:
    def fix_of(document: dict[str, Any], pointer: str) -> str:
        outcome = validate_codemeta(document)
        issue = next(i for i in [*outcome.errors, *outcome.warnings] if i.pointer == pointer)
        assert issue.fix is not None
        return issue.fix

    conflict = validate_codemeta(entry(version="1.0.0")).errors[0]
    assert "'1.0.0'" in conflict.msg
    assert "'1.0.1'" in conflict.msg
    assert (
        fix_of(entry(version="1.0.0"), "/version")
        == 'write "version": "1.0.1" (or remove "version")'
    )
    assert fix_of(entry(softwareVersion=None, version="2.1"), "/softwareVersion") == (
        'add "softwareVersion": "2.1"'
    )
    orcid = entry(author=[{"@type": "Person", "@id": " https://orcid.org/ 0000-0002-1825-0097"}])
    assert fix_of(orcid, "/author/0/@id") == 'write "https://orcid.org/0000-0002-1825-0097"'
    assert fix_of(entry(datePublished="31-12-2023"), "/datePublished") == 'write "2023-12-31"'
    assert '"2024-04-09"' in fix_of(entry(datePublished="09-04-2024"), "/datePublished")
    maintainer = json.loads(
        fix_of(
            entry(maintainer="Josiah Carberry <josiah@example.org>"), "/maintainer"
        ).removeprefix("write ")
    )
    assert maintainer == {
        "@type": "Person",
        "email": "josiah@example.org",
        "givenName": "Josiah",
        "familyName": "Carberry",
    }
    assert (
        fix_of(entry(issuetracker="https://x.org"), "/issuetracker")
        == 'rename it to "issueTracker"'
    )
    assert (
        fix_of(entry(softwareVersion=0.19), "/softwareVersion") == 'write "softwareVersion": "0.19"'
    )
    assert fix_of(entry(license="https://github.com/x/y/blob/main/LICENSE-MIT"), "/license") == (
        'write "https://spdx.org/licenses/MIT"'
    )
    blank = validate_codemeta({**entry(), "softwareVersion": None}).errors
    assert [(e.pointer, e.type) for e in blank] == [("/softwareVersion", "missing")]
    record = validate_codemeta(entry(license="https://opensource.org/licenses/GPL-3.0")).record
    assert record is not None
    assert record.licenses == ["GPL-3.0"]


def test_eossr_drops_an_orcid_with_a_space(eossr: dict[str, dict[str, Any]]) -> None:
    """Why a spaced ORCID is an error here although eossr's validator accepts it."""
    zenodo = eossr["orcid-with-space"]["convert"]["zenodo"]
    (other,) = [c for c in zenodo["contributors"] if c["type"] == "Other"]
    assert "orcid" not in other
    contact = next(c for c in zenodo["contributors"] if c["type"] == "ContactPerson")
    assert contact["name"] == "Josiah Carberry"


async def test_json_syntax_error_says_where_and_why(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    # KM3NeT/KM3-230213A-data@0284aa570785e6b72c814011c15be864bcfdd5bb: a stray quote after a
    # description, which FastAPI alone reports as loc ["body", 773] "JSON decode error".
    lines = json.dumps(entry(), indent=4).splitlines()
    where = next(i for i, line in enumerate(lines) if '"description"' in line)
    lines[where] = lines[where].replace('detector.",', 'detector."",')
    body = "\n".join(lines)
    response = await client.post(
        "/software",
        content=body.encode(),
        headers={**as_user("alice"), "Content-Type": "application/json"},
    )
    # vre_common's malformed-body problem (the same on every route), with what to write
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/malformed-body")
    column = lines[where].index('""') + 2
    assert (problem["line"], problem["column"]) == (where + 1, column)
    assert problem["reason"] == "Expecting ',' delimiter"
    assert f"line {where + 1}, column {column}" in problem["detail"]
    (error,) = problem["errors"]
    assert (error["line"], error["column"]) == (where + 1, column)
    assert error["type"] == "json_invalid"
    assert "comma" in error["fix"]
    assert problem["fix"] == error["fix"]


async def test_real_world_shapes_register(client: httpx.AsyncClient, as_user: Users) -> None:
    """The shapes the issue found refused are registered over HTTP."""
    for case in (c for c in CASES if c.ours_ok):
        document = copy.deepcopy(case.document)
        document["name"] = f"tiny-irf-{case.id}"
        response = await client.post("/software", json=document, headers=as_user("alice"))
        assert response.status_code == 201, (case.id, response.text)
        assert all(w["fix"] and w["pointer"] for w in response.json()["warnings"])


async def test_zenodo_export_carries_contributors_like_eossr(
    client: httpx.AsyncClient, as_user: Users
) -> None:
    # garciagenrique/template_escape@ec85e5c6286586abcb32664d2c9e346cdf204760: a maintainer and
    # contributors; eossr's crosswalk maps contributor to Zenodo contributors of type "Other".
    document = entry(
        contributor=[
            {
                "@type": "Person",
                "@id": "https://orcid.org/0000-0001-5109-3700",
                "givenName": "Ada",
                "familyName": "Lovelace",
                "affiliation": {"@type": "Organization", "name": "Analytical Engines"},
            },
            {"@type": "Organization", "name": "ESCAPE"},
        ]
    )
    created = await client.post("/software", json=document, headers=as_user("alice"))
    assert created.status_code == 201, created.text
    exported = await client.get(f"/software/{created.json()['software']['id']}/zenodo")
    ours = exported.json()["metadata"]["contributors"]
    assert [(c["type"], c["name"]) for c in ours] == [
        ("ContactPerson", "Carberry, Josiah"),
        ("Other", "Lovelace, Ada"),
        ("Other", "ESCAPE"),
    ]
    assert ours[1]["orcid"] == "0000-0001-5109-3700"
    assert ours[1]["affiliation"] == "Analytical Engines"
    if not EOSSR_PYTHON.exists():
        pytest.skip(".venv-eossr is missing: `make deps` builds it")
    (verdict,) = _witness([document])
    theirs = verdict["convert"]["zenodo"]["contributors"]

    def key(contributor: dict[str, Any]) -> tuple[str, tuple[str, ...], str]:
        # eossr writes "Given Family" and the ORCID URL; we write "Family, Given" and the iD
        words = tuple(sorted(contributor["name"].replace(",", " ").split()))
        orcid = contributor.get("orcid")
        return contributor["type"], words, orcid.rsplit("/", 1)[-1] if orcid else ""

    # the words sorted, not a set: the order of a set of strings changes from run to run
    assert sorted(map(key, ours)) == sorted(map(key, theirs))
