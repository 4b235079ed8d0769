"""SPDX license identifiers, checked offline against the list that ``packaging`` ships."""

from __future__ import annotations

import re

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

_SPDX_URL = re.compile(r"^https?://(?:www\.)?spdx\.org/licenses/([^/?#]+?)(?:\.html|\.json)?/?$")


class UnknownLicenseError(ValueError):
    """The value is no SPDX license id (or SPDX license URL)."""


def spdx_id(value: str) -> str:
    """The canonical SPDX id for a plain id or a ``https://spdx.org/licenses/<id>`` URL.

    Case does not matter (``mit`` → ``MIT``); license expressions (``MIT OR Apache-2.0``) are
    accepted; custom ``LicenseRef-…`` ids and other URLs are not.
    """
    text = value.strip()
    match = _SPDX_URL.match(text)
    if match:
        text = match.group(1)
    elif "://" in text:
        raise UnknownLicenseError(
            f"{value!r} is not an SPDX license URL (https://spdx.org/licenses/<id>)"
        )
    if not text:
        raise UnknownLicenseError("the license is empty")
    try:
        canonical = canonicalize_license_expression(text)
    except InvalidLicenseExpression as exc:
        raise UnknownLicenseError(f"{value!r} is not a known SPDX license id") from exc
    if "LicenseRef-" in canonical:
        raise UnknownLicenseError(f"{value!r} is a custom license, not an SPDX license id")
    return str(canonical)
