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
import unicodedata
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from vre_common.errors import InvalidInputError
from vre_common.provenance.ids import check_entity_id
from vre_common.types import HOST_CHAR, NFKC_DELIMITERS, VISIBLE, WEB_URL_PATTERN

BMP = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]


def _refused_by_python(char_class: str) -> set[int]:
    compiled = re.compile(char_class)
    return {ord(ch) for ch in BMP if not compiled.fullmatch(ch)}


def _refused_by_pydantic(char_class: str) -> set[int]:
    class One(BaseModel):
        value: str = Field(pattern=rf"^{char_class}$")

    refused = set()
    for ch in BMP:
        try:
            One(value=ch)
        except ValidationError:
            refused.add(ord(ch))
    return refused


def _refused_by_ecma(char_class: str) -> set[int]:
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
        [node, "-e", script, char_class], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(run.stdout))


@pytest.mark.parametrize("char_class", [VISIBLE, HOST_CHAR], ids=["VISIBLE", "HOST_CHAR"])
def test_character_classes_are_one_set_in_python_pydantic_and_ecma(char_class: str) -> None:
    python = _refused_by_python(char_class)
    assert python == _refused_by_pydantic(char_class)
    assert python == _refused_by_ecma(char_class)
    # White space, C0 and C1 controls, the byte-order mark; letters and symbols pass.
    assert {0x20, 0x09, 0x0A, 0x1C, 0x85, 0xA0, 0x2028, 0x3000, 0xFEFF} <= python
    assert not {ord(c) for c in "aZ09.%~é漢"} & python


def test_nfkc_delimiters_are_every_character_urllib_refuses_in_a_host() -> None:
    found = {
        c
        for c in range(0x80, 0x110000)
        if not 0xD800 <= c <= 0xDFFF
        and any(d in unicodedata.normalize("NFKC", chr(c)) for d in "/?#@:")
    }
    listed = {int(code, 16) for code in NFKC_DELIMITERS.split("\\u")[1:]}
    assert listed == found


@settings(max_examples=500, deadline=None)
@given(st.from_regex(WEB_URL_PATTERN, fullmatch=True))
def test_every_url_the_pattern_admits_is_one_url(url: str) -> None:
    """What the document lets a client send, urllib (and schemathesis) can read: the fuzzer
    crashed on a link 'http://[…' ('Invalid IPv6 URL') the server had accepted."""
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https")
    assert parts.hostname
    assert parts.port is None or 0 <= parts.port <= 65535


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://github.com/cta-observatory/ctapipe", True),
        ("https://doi.org/10.5281/zenodo.3372210#files", True),
        ("http://localhost:8080/?q=a[1]", True),
        ("https://münchen.example/karte", True),
        ("http://[::1]/", False),
        ("http://:80/", False),
        ("http://host:65536/", False),
        ("http://user@host/", False),
        ("https://a\uff0fb/", False),
        ("https://host/a b", False),
        ("ftp://host/", False),
    ],
)
def test_web_urls(url: str, valid: bool) -> None:
    assert bool(re.fullmatch(WEB_URL_PATTERN, url)) is valid


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
    try:
        accepted = check_entity_id(entity) == entity
    except InvalidInputError:
        accepted = False
    assert accepted is valid
