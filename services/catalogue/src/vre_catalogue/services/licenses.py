"""SPDX license identifiers, checked offline against the list that ``packaging`` ships.

A license is accepted as an SPDX id (any case), an ``https://spdx.org/licenses/<id>`` URL, or an
``https://opensource.org/licenses/<id>`` URL (what the ESCAPE codemeta generator writes, and
what the OSSR's eossr accepts): each maps to the canonical SPDX id.
"""

from __future__ import annotations

import re

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.licenses._spdx import LICENSES as _SPDX

_SPDX_URL = re.compile(
    r"^https?://(?:www\.)?spdx\.org/licenses/([^/?#]+?)(?:\.html|\.json|\.txt)?/?$", re.IGNORECASE
)
_OSI_URL = re.compile(
    r"^https?://(?:www\.)?opensource\.org/licen[sc]es?/([^/?#]+?)(?:\.php|\.html)?/?$",
    re.IGNORECASE,
)
# opensource.org's older page names that are no SPDX id.
_OSI_PAGES = {
    "mit-license": "MIT",
    "bsd-license": "BSD-2-Clause",
    "bsd-3-clause-license": "BSD-3-Clause",
    "apache2.0": "Apache-2.0",
    "apache-2.0-license": "Apache-2.0",
    "gpl-3.0-license": "GPL-3.0-only",
    "lgpl-3.0-license": "LGPL-3.0-only",
}
SPDX_HINT = 'an SPDX id such as "MIT", or https://spdx.org/licenses/<id>'


class UnknownLicenseError(ValueError):
    """The value is no SPDX license id (nor an SPDX or opensource.org license URL)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def _canonical(text: str) -> str | None:
    try:
        canonical = str(canonicalize_license_expression(text))
    except InvalidLicenseExpression:
        return None
    return None if "LicenseRef-" in canonical else canonical


def _guess(value: str) -> str | None:
    """An SPDX id hidden in an unknown URL's last segment (…/LICENSE-MIT, …/GPL-3.0.txt)."""
    tail = value.rstrip("/").rsplit("/", 1)[-1]
    tail = re.sub(r"(?i)^licen[sc]e[-_.]?|\.(txt|md|rst|html|php)$", "", tail)
    return _canonical(tail) if tail else None


def spdx_id(value: str) -> str:
    """The canonical SPDX id of a plain id, an SPDX license URL or an opensource.org one.

    Case does not matter (``mit`` → ``MIT``); license expressions (``MIT OR Apache-2.0``) are
    accepted; custom ``LicenseRef-…`` ids and other URLs are not (UnknownLicenseError, whose
    ``fix`` says what to write instead).
    """
    text = value.strip()
    if not text:
        raise UnknownLicenseError("the license is empty", fix=f"write {SPDX_HINT}")
    match = _SPDX_URL.match(text) or _OSI_URL.match(text)
    if match:
        text = _OSI_PAGES.get(match.group(1).lower(), match.group(1))
    elif "://" in text:
        guess = _guess(text)
        raise UnknownLicenseError(
            f"{value!r} is a link, not an SPDX license (the OSSR reads SPDX ids, spdx.org and "
            "opensource.org license URLs)",
            fix=f'write "https://spdx.org/licenses/{guess}"' if guess else f"write {SPDX_HINT}",
        )
    if "LicenseRef-" in text:
        raise UnknownLicenseError(
            f"{value!r} is a custom license, not an SPDX license id",
            fix=f"write {SPDX_HINT}; a license without an SPDX id cannot be deposited as open",
        )
    canonical = _canonical(text)
    if canonical is None:
        raise UnknownLicenseError(
            f"{value!r} is not a known SPDX license id", fix=f"write {SPDX_HINT}"
        )
    return canonical


def deprecated_replacement(spdx: str) -> str | None:
    """For a deprecated SPDX id (``GPL-3.0``, ``GPL-3.0+``): the id to write instead; else None."""
    entry = _SPDX.get(spdx.lower())
    if entry is None or not entry.get("deprecated"):
        return None
    if spdx.endswith("+") and f"{spdx[:-1]}-or-later".lower() in _SPDX:
        return f"{spdx[:-1]}-or-later"
    if f"{spdx}-only".lower() in _SPDX:
        return f"{spdx}-only"
    return None
