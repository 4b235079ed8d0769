"""Helpers of the gateway tests: users, a recording scope provisioner (the one fake)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from vre_common.testing import TestIssuer


@dataclass
class ScopeCall:
    """One call the gateway made to the scope provisioner port."""

    scope: str
    project: str
    quota_bytes: int | None
    token: str | None


@dataclass
class RecordingProvisioner:
    """The only fake of these tests: stands for the datalake's scope creation port.

    It records what the gateway asked for; ``data`` says which scopes hold data; ``fail``
    makes creation raise (to test that nothing of the project is kept).
    """

    calls: list[ScopeCall] = field(default_factory=list)
    data: set[str] = field(default_factory=set)
    fail: Exception | None = None

    async def create_scope(
        self, scope: str, *, project: str, quota_bytes: int | None, token: str | None
    ) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append(ScopeCall(scope, project, quota_bytes, token))

    async def scope_has_data(self, scope: str, *, token: str | None) -> bool:
        return scope in self.data


class Users:
    """Headers for test users (any name; alice, bob, carol, admin have groups)."""

    def __init__(self, issuer: TestIssuer) -> None:
        self.issuer = issuer

    def __call__(self, user: str, **claims: Any) -> dict[str, str]:
        return self.issuer.headers(user, **claims)

    def subject(self, user: str) -> str:
        return self.issuer.subject(user)


async def create_project(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    slug: str,
    *,
    visibility: str = "private",
    name: str | None = None,
) -> dict[str, Any]:
    """Create a project and return its JSON (asserting 201)."""
    r = await client.post(
        "/projects",
        json={"name": name or slug.title(), "slug": slug, "visibility": visibility},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def add_member(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    slug: str,
    subject: str,
    role: str,
) -> dict[str, Any]:
    """Add a member by subject (asserting 201)."""
    r = await client.post(
        f"/projects/{slug}/members", json={"subject": subject, "role": role}, headers=headers
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def documented_permissions() -> dict[str, dict[str, str]]:
    """docs/authorization.md's table: action → column → cell (✔, —, 409)."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[4] / "docs" / "authorization.md"
    text = doc.read_text()
    begin, end = "<!-- BEGIN PERMISSION TABLE -->\n", "<!-- END PERMISSION TABLE -->"
    block = text[text.index(begin) + len(begin) : text.index(end)]
    columns = ["owner", "maintainer", "member", "viewer", "signed-in", "anonymous", "archived"]
    table: dict[str, dict[str, str]] = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[re.sub("`", "", cells[0])] = dict(zip(columns, cells[2:], strict=True))
    return table
