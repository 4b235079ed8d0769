"""Projects: self-service creation with a Data Lake scope, listing, update, delete/archive."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime

from vre_common.auth import Principal
from vre_common.policy import Action, ProjectAccess, Role, Visibility
from vre_gateway.backends.scopes import ScopeProvisioner
from vre_gateway.config import ProjectSettings
from vre_gateway.errors import (
    InvalidSlugError,
    ProjectExistsError,
    ProjectHasDataError,
    ProjectLimitError,
)
from vre_gateway.models.projects import (
    Link,
    Project,
    ProjectCreate,
    ProjectFilter,
    ProjectList,
    ProjectUpdate,
)
from vre_gateway.services.access import AccessService
from vre_gateway.services.audit import Auditor
from vre_gateway.storage.projects import ProjectStore
from vre_gateway.storage.records import MemberRecord, ProjectRecord

_SLUG_OK = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def derive_slug(name: str, max_length: int) -> str:
    """A slug from a project name: ASCII, lower case, words joined by '-'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")
    return slug[:max_length].strip("-")


def to_project(record: ProjectRecord, role: Role | None) -> Project:
    """The API view of a project for a caller with ``role``."""
    return Project(
        slug=record.slug,
        name=record.name,
        description=record.description,
        visibility=record.visibility,
        scope=record.scope,
        archived=record.archived,
        links=[Link.model_validate(link) for link in record.links],
        created_at=record.created_at,
        updated_at=record.updated_at,
        role=role,
    )


class ProjectService:
    """The rules of projects (who may create, change, delete them)."""

    def __init__(
        self,
        *,
        store: ProjectStore,
        access: AccessService,
        auditor: Auditor,
        provisioner: ScopeProvisioner,
        settings: ProjectSettings,
    ) -> None:
        self.store = store
        self.access = access
        self.auditor = auditor
        self.provisioner = provisioner
        self.settings = settings

    async def lookup(
        self, principal: Principal | None, *, project: str | None, scope: str | None
    ) -> ProjectAccess | None:
        """What ``GET /projects/-/access`` answers (None: unknown or private)."""
        return await self.access.lookup(principal, project=project, scope=scope)

    async def create(self, principal: Principal, body: ProjectCreate, token: str | None) -> Project:
        """Create a project, its owner membership and its Data Lake scope."""
        if self.settings.create_groups and not any(
            principal.in_group(g) for g in self.settings.create_groups
        ):
            raise ProjectLimitError(
                "creating projects is open to members of " + ", ".join(self.settings.create_groups)
            )
        owned = await self.store.count_owned(principal.key)
        if owned >= self.settings.max_projects_per_user:
            raise ProjectLimitError(
                f"you own {owned} projects; the limit is {self.settings.max_projects_per_user}",
                extra={"limit": self.settings.max_projects_per_user},
            )
        slug = await self._slug(body)
        now = datetime.now(UTC)
        record = ProjectRecord(
            id=str(uuid.uuid4()),
            slug=slug,
            scope=self.settings.scope_prefix + slug,
            name=body.name,
            description=body.description,
            visibility=body.visibility,
            archived=False,
            links=[link.model_dump() for link in body.links],
            created_by=principal.key,
            created_at=now,
            updated_at=now,
        )
        # The scope first, before any row is written: no database write lock is held while
        # the datalake talks to Rucio (on SQLite that lock stopped every other writer, and
        # concurrent creations timed out). Creating a scope is idempotent: if the rows below
        # fail, the empty scope is the next project of that name's.
        await self.provisioner.create_scope(
            record.scope,
            project=record.slug,
            quota_bytes=self.settings.scope_quota_bytes,
            token=token,
        )
        await self.store.add(record)
        await self.store.add_member(
            MemberRecord(
                id=str(uuid.uuid4()),
                project_id=record.id,
                principal_key=principal.key,
                issuer=principal.issuer,
                subject=principal.subject,
                username=principal.username,
                role=Role.OWNER,
                added_by=principal.key,
                added_at=now,
            )
        )
        await self.auditor.record(
            principal,
            "project.create",
            project=record,
            target=record.scope,
            detail={"name": record.name, "visibility": record.visibility.value},
        )
        return to_project(record, Role.OWNER)

    async def _slug(self, body: ProjectCreate) -> str:
        limit = self.settings.max_slug_length
        prefix = self.settings.scope_prefix
        if body.slug is not None:
            if len(body.slug) > limit:
                raise InvalidSlugError(
                    f"a slug has at most {limit} characters (the scope is {prefix}<slug>)",
                    errors=[{"loc": ["body", "slug"], "msg": f"at most {limit} characters"}],
                )
            if await self.store.slug_taken(body.slug, prefix + body.slug):
                raise ProjectExistsError(f"the project {body.slug} exists")
            return body.slug
        base = derive_slug(body.name, limit)
        if len(base) < 2 or not _SLUG_OK.match(base):
            raise InvalidSlugError(
                "no slug can be derived from this name: give one",
                errors=[{"loc": ["body", "slug"], "msg": "required for this name"}],
            )
        candidate = base
        for n in range(2, 100):
            if not await self.store.slug_taken(candidate, prefix + candidate):
                return candidate
            suffix = f"-{n}"
            candidate = base[: limit - len(suffix)].rstrip("-") + suffix
        raise ProjectExistsError(f"the project {base} exists: choose a slug")

    async def get(self, principal: Principal | None, slug: str) -> Project:
        """One project, if the caller may see it."""
        record, access = await self.access.require(principal, slug, Action.PROJECT_READ)
        return to_project(record, access.role)

    async def list(
        self, principal: Principal | None, which: ProjectFilter, *, limit: int, offset: int
    ) -> ProjectList:
        """The caller's projects and/or the public ones."""
        records = await self.store.list_visible(
            principal,
            mine=which in (ProjectFilter.ALL, ProjectFilter.MINE),
            public=which in (ProjectFilter.ALL, ProjectFilter.PUBLIC),
            limit=limit,
            offset=offset,
        )
        roles = await self.store.roles(principal, [r.id for r in records]) if principal else {}
        return ProjectList(items=[to_project(r, roles.get(r.id)) for r in records])

    async def update(self, principal: Principal, slug: str, body: ProjectUpdate) -> Project:
        """Change name, description, links (maintainers) or visibility (owners)."""
        record, access = await self.access.require(principal, slug, Action.PROJECT_UPDATE)
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "visibility" in changes and changes["visibility"] != record.visibility:
            await self.access.require(principal, slug, Action.PROJECT_VISIBILITY)
        if not changes:
            return to_project(record, access.role)
        now = datetime.now(UTC)
        values = {**changes, "updated_at": now}
        if "visibility" in values:
            values["visibility"] = Visibility(values["visibility"]).value
        await self.store.update(record.id, **values)
        await self.auditor.record(
            principal, "project.update", project=record, detail={"fields": sorted(changes)}
        )
        updated = record.model_copy(update={**changes, "updated_at": now})
        return to_project(updated, access.role)

    async def delete(
        self, principal: Principal, slug: str, *, archive: bool, token: str | None
    ) -> None:
        """Delete a project whose scope is empty, or archive it (read-only) if asked."""
        record, _ = await self.access.require(principal, slug, Action.PROJECT_DELETE)
        if archive:
            await self.store.update(record.id, archived=True, updated_at=datetime.now(UTC))
            await self.auditor.record(principal, "project.archive", project=record)
            return
        if await self.provisioner.scope_has_data(record.scope, token=token):
            raise ProjectHasDataError(
                f"the scope {record.scope} holds data: delete it first, or archive the project "
                "with ?archive=true"
            )
        await self.auditor.record(principal, "project.delete", project=record, target=record.scope)
        await self.store.delete(record.id)
