"""The patterns the OpenAPI document states mean the same in every engine that reads them.

JSON Schema's ``pattern`` is an ECMA-262 regular expression (clients, schemathesis, browsers),
the server checks the same text with pydantic (Rust's regex) or Python's ``re``. ``\\S`` is
not the same set in the three (the fuzzer found ``https://…\\x85…`` refused by the server
although the document allowed it), so visible characters are spelt :data:`VISIBLE`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from pydantic import BaseModel, Field, ValidationError

from vre_common.provenance.ids import ENTITY_ID_RE
from vre_common.types import VISIBLE

BMP = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]


class _One(BaseModel):
    value: str = Field(pattern=rf"^{VISIBLE}$")


def _refused_by_python() -> set[int]:
    compiled = re.compile(VISIBLE)
    return {ord(ch) for ch in BMP if not compiled.fullmatch(ch)}


def _refused_by_pydantic() -> set[int]:
    refused = set()
    for ch in BMP:
        try:
            _One(value=ch)
        except ValidationError:
            refused.add(ord(ch))
    return refused


def _refused_by_ecma() -> set[int]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not on PATH (make system-deps installs it)")
    script = (
        "const re = new RegExp('^' + process.argv[1] + '$', 'u'); const out = [];"
        "for (let c = 0; c < 0x10000; c++) {"
        "  if (c >= 0xD800 && c <= 0xDFFF) continue;"
        "  if (!re.test(String.fromCharCode(c))) out.push(c); }"
        "console.log(JSON.stringify(out));"
    )
    run = subprocess.run(
        [node, "-e", script, VISIBLE], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(run.stdout))


def test_visible_is_one_set_in_python_pydantic_and_ecma() -> None:
    python = _refused_by_python()
    assert python == _refused_by_pydantic()
    assert python == _refused_by_ecma()
    # White space, C0 and C1 controls, the byte-order mark; letters and symbols pass.
    assert {0x20, 0x09, 0x0A, 0x1C, 0x85, 0xA0, 0x2028, 0x3000, 0xFEFF} <= python
    assert not {ord(c) for c in "aZ09/:.%~é漢"} & python


@pytest.mark.parametrize(
    ("entity", "valid"),
    [
        ("did:user.alice:events.fits", True),
        ("doi:10.5281/zenodo.123", True),
        ("run:1\n", False),  # Python's $ would let a trailing newline through
        ("run:a\x85b", False),
        ("run:a b", False),
    ],
)
def test_entity_ids_are_checked_as_the_document_states(entity: str, valid: bool) -> None:
    assert bool(ENTITY_ID_RE.fullmatch(entity)) is valid
