"""Helpers of the catalogue tests: codemeta samples and the users' headers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vre_common.testing import TestIssuer

DATA = Path(__file__).parent.parent / "data"
CURATOR_GROUP = "/vre/curators"


def codemeta(name: str) -> dict[str, Any]:
    """A codemeta.json sample from tests/data."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


class Users:
    """Authorization headers of the tests' users: alice, bob, carol, admin, curator."""

    def __init__(self, issuer: TestIssuer) -> None:
        self._issuer = issuer

    def __call__(self, name: str) -> dict[str, str]:
        if name == "curator":
            return self._issuer.headers("dora", **{"wlcg.groups": ["/vre", CURATOR_GROUP]})
        return self._issuer.headers(name)
