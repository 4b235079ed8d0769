"""The policy module: the decision for every role × action × kind of project, against the
table in docs/authorization.md; the provenance event model."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from vre_common.auth import Principal
from vre_common.errors import ConflictError, ForbiddenError, InvalidTokenError, NotFoundError
from vre_common.policy import (
    PERMISSIONS,
    Action,
    ProjectAccess,
    Role,
    Visibility,
    authorize,
    permission_table_markdown,
    strongest,
)
from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id, run_id

DOC = Path(__file__).resolve().parents[3] / "docs" / "authorization.md"
BEGIN, END = "<!-- BEGIN PERMISSION TABLE -->\n", "<!-- END PERMISSION TABLE -->"
COLUMNS = ["owner", "maintainer", "member", "viewer", "signed-in", "anonymous", "archived"]


def documented() -> dict[str, dict[str, str]]:
    """The table as the docs state it: action → column → cell."""
    text = DOC.read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    table: dict[str, dict[str, str]] = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        action = re.sub(r"`", "", cells[0])
        table[action] = dict(zip(COLUMNS, cells[2:], strict=True))
    return table


DOCUMENTED = documented()


def test_docs_table_is_generated_from_the_code() -> None:
    text = DOC.read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert block == permission_table_markdown(), "regenerate docs/authorization.md's table"
    assert set(DOCUMENTED) == {a.value for a in Action}


def user(name: str = "u") -> Principal:
    return Principal(
        subject=name, issuer="https://iam.test/", username=name, expires_at=int(time.time()) + 60
    )


def access(role: Role | None, visibility: Visibility, *, archived: bool = False) -> ProjectAccess:
    return ProjectAccess(
        project="p", scope="proj.p", visibility=visibility, role=role, archived=archived
    )


def expected(action: str, column: str, *, anonymous: bool = False) -> int:
    if DOCUMENTED[action][column] == "✔":
        return 200
    return 401 if anonymous else 403


def outcome(acc: ProjectAccess | None, principal: Principal | None, action: str) -> int:
    try:
        authorize(acc, principal, Action(action))
    except NotFoundError:
        return 404
    except InvalidTokenError:
        return 401
    except ForbiddenError:
        return 403
    except ConflictError:
        return 409
    return 200


@pytest.mark.parametrize("action", sorted(DOCUMENTED))
@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize("kind", ["own", "other", "public"])
def test_each_role_action_and_project(action: str, role: str, kind: str) -> None:
    """own: a private project where the caller has the role; other: a private project
    where they have none (404); public: a public project where they have none."""
    if kind == "own":
        result = outcome(access(Role(role), Visibility.PRIVATE), user(), action)
        assert result == expected(action, role)
    elif kind == "other":
        assert outcome(access(None, Visibility.PRIVATE), user(), action) == 404
    else:
        assert outcome(access(None, Visibility.PUBLIC), user(), action) == expected(
            action, "signed-in"
        )
        # a role in a public project counts as it does in a private one, or more
        with_role = outcome(access(Role(role), Visibility.PUBLIC), user(), action)
        assert with_role == (
            200 if 200 in (expected(action, role), expected(action, "signed-in")) else 403
        )


@pytest.mark.parametrize("action", sorted(DOCUMENTED))
@pytest.mark.parametrize("kind", ["other", "public", "unknown"])
def test_anonymous_caller(action: str, kind: str) -> None:
    if kind == "unknown":
        assert outcome(None, None, action) == 404
    elif kind == "other":
        assert outcome(access(None, Visibility.PRIVATE), None, action) == 404
    else:
        assert outcome(access(None, Visibility.PUBLIC), None, action) == expected(
            action, "anonymous", anonymous=True
        )


@pytest.mark.parametrize("action", sorted(DOCUMENTED))
def test_archived_projects_are_read_only(action: str) -> None:
    result = outcome(access(Role.OWNER, Visibility.PRIVATE, archived=True), user(), action)
    allowed_by_role = DOCUMENTED[action]["owner"] == "✔"
    if not allowed_by_role:
        assert result == 403
    elif DOCUMENTED[action]["archived"] == "✔":
        assert result == 200
    else:
        assert result == 409


def test_roles_are_ordered() -> None:
    assert Role.OWNER.at_least(Role.MAINTAINER)
    assert not Role.VIEWER.at_least(Role.MEMBER)
    assert strongest(Role.VIEWER, None, Role.MAINTAINER, Role.MEMBER) is Role.MAINTAINER
    assert strongest() is None
    # the table is monotonic: a stronger role may do whatever a weaker one may
    for grantees in PERMISSIONS.values():
        for weak in Role:
            for strong in Role:
                if strong.at_least(weak) and weak in grantees:
                    assert strong in grantees


def test_forbidden_problem_names_the_action() -> None:
    with pytest.raises(ForbiddenError) as failure:
        authorize(access(Role.VIEWER, Visibility.PRIVATE), user(), Action.DATA_WRITE)
    assert failure.value.extra == {"action": "data.write", "project": "p"}
    assert failure.value.slug == "project-forbidden"


# ----------------------------------------------------------------------------- events


def test_event_ids_and_kinds() -> None:
    assert did_id("proj.x", "a/b.root") == "did:proj.x:a/b.root"
    assert run_id("42") == "run:42"
    assert doi_id("https://doi.org/10.5281/Zenodo.1") == "doi:10.5281/zenodo.1"
    who = user("alice")
    event = Event.create(
        EventKind.UPLOAD,
        who,
        service="datalake",
        project="x",
        generated=["did:proj.x:a", "did:proj.x:a"],
    )
    assert event.actor == "https://iam.test/|alice"
    assert event.actor_name == "alice"
    assert event.generated == ["did:proj.x:a"]  # duplicates dropped
    assert event.activity_id == f"upload:{event.id}"
    assert Event.model_validate_json(event.model_dump_json()) == event
    with pytest.raises(ValidationError):
        Event.create(EventKind.RUN_STARTED, who, service="workflows", used=["did:s:n"])
    with pytest.raises(ValidationError):
        Event.create(EventKind.UPLOAD, who, service="datalake", generated=["no id"])
    with pytest.raises(ValidationError):
        Event.model_validate({**event.model_dump(), "id": str(uuid.uuid4()), "extra": 1})
