"""Registering, editing, exporting and finding software entries."""

from __future__ import annotations

from typing import Any

from vre_catalogue.config import ExportSettings
from vre_catalogue.errors import InvalidCodemetaError, NameTakenError, VersionExistsError
from vre_catalogue.models import (
    Environment,
    EnvironmentCreate,
    Registration,
    SearchQuery,
    SearchResult,
    Software,
    SoftwareRef,
    SoftwareVersion,
    ZenodoExport,
)
from vre_catalogue.services.access import AccessPolicy
from vre_catalogue.services.codemeta import (
    CodemetaRecord,
    ValidationOutcome,
    merge_patch,
    validate_codemeta,
)
from vre_catalogue.services.crosswalk import codemeta_to_zenodo
from vre_catalogue.storage.software import SoftwareStore
from vre_common.auth import Principal
from vre_common.policy import RequestPolicy


def require_valid(outcome: ValidationOutcome) -> CodemetaRecord:
    """The record of a valid document; InvalidCodemetaError listing every problem otherwise."""
    if outcome.errors or outcome.record is None:
        count = len(outcome.errors)
        fields = ", ".join(
            dict.fromkeys(".".join(str(p) for p in e.loc) or "(document)" for e in outcome.errors)
        )
        raise InvalidCodemetaError(
            f"the codemeta.json has {count} problem(s): {fields}",
            errors=[e.model_dump(exclude_none=True) for e in outcome.errors],
            extra={"warnings": [w.model_dump(exclude_none=True) for w in outcome.warnings]},
        )
    return outcome.record


class SoftwareService:
    """The catalogue's rules: one entry per software (by DOI, else by name), many releases;
    entries belong to their registrant (curators may edit any) or to a Science Project (its
    maintainers edit them)."""

    def __init__(
        self,
        *,
        store: SoftwareStore,
        access: AccessPolicy,
        export: ExportSettings,
        facet_limit: int,
        projects: RequestPolicy | None = None,
    ) -> None:
        self._store = store
        self._access = access
        self._export = export
        self._facet_limit = facet_limit
        self._projects = projects

    async def _require_edit(self, user: Principal, software_id: int) -> SoftwareRef:
        entry = await self._store.ref(software_id)
        await self._access.require_edit(user, entry, self._projects)
        return entry

    async def register(
        self, user: Principal, document: dict[str, Any], *, project: str | None = None
    ) -> Registration:
        """Validate a codemeta.json and store it as a new entry or a new release.

        With ``project`` a new entry belongs to that project (``catalogue.write`` there).
        """
        if project is not None:
            await self._access.require_project_write(user, project, self._projects)
        outcome = validate_codemeta(document)
        record = require_valid(outcome)
        version = record.version or ""
        existing = await self._store.find_by_dois(record.dois) or await self._store.find_by_name(
            record.name
        )
        if existing is not None:
            self._access.require_same_owner(existing, project)
            await self._access.require_edit(user, existing, self._projects)
            if await self._store.find_version(existing.id, version) is not None:
                raise VersionExistsError(
                    f"{existing.name} {version} is registered already: PATCH it instead"
                )
            software_id = existing.id
        else:
            software_id = await self._store.create_entry(
                name=record.name,
                registrant_key=user.key,
                registrant_name=user.username,
                source="api",
                project=project,
            )
        await self._store.add_version(
            software_id, record, version=version, source="api", warnings=outcome.warnings
        )
        await self._store.refresh(software_id)
        return Registration(
            created=existing is None,
            software=await self._store.get(software_id),
            version=version,
            warnings=outcome.warnings,
        )

    async def update(
        self,
        user: Principal,
        software_id: int,
        patch: dict[str, Any],
        version: str | None = None,
    ) -> Registration:
        """Apply a JSON merge patch to a release's codemeta.json (the latest by default);
        the result is validated as a whole."""
        entry = await self._require_edit(user, software_id)
        release = await self._store.version_ref(software_id, version)
        document = merge_patch(await self._store.codemeta(release.id), patch)
        outcome = validate_codemeta(document)
        record = require_valid(outcome)
        new_version = record.version or release.version
        if new_version != release.version and await self._store.find_version(
            software_id, new_version
        ):
            raise VersionExistsError(f"{entry.name} {new_version} exists already")
        other = await self._store.find_by_name(record.name)
        if other is not None and other.id != software_id:
            raise NameTakenError(f"another entry is named {record.name!r}")
        await self._store.replace_version(
            release.id, record, version=new_version, warnings=outcome.warnings
        )
        await self._store.refresh(software_id)
        return Registration(
            created=False,
            software=await self._store.get(software_id),
            version=new_version,
            warnings=outcome.warnings,
        )

    async def delete(self, user: Principal, software_id: int) -> None:
        """Delete an entry and all its releases."""
        await self._require_edit(user, software_id)
        await self._store.delete_entry(software_id)

    async def delete_version(self, user: Principal, software_id: int, version: str) -> None:
        """Delete one release; the entry goes with its last release."""
        await self._require_edit(user, software_id)
        release = await self._store.version_ref(software_id, version)
        await self._store.delete_version(release.id)
        await self._store.refresh(software_id)

    async def get(self, software_id: int) -> Software:
        """An entry."""
        return await self._store.get(software_id)

    async def versions(self, software_id: int) -> list[SoftwareVersion]:
        """Every release of an entry, newest first."""
        await self._store.ref(software_id)
        return await self._store.versions(software_id)

    async def version(self, software_id: int, version: str) -> SoftwareVersion:
        """One release."""
        await self._store.version_ref(software_id, version)
        return (await self._store.versions(software_id, version))[0]

    async def codemeta(self, software_id: int, version: str | None) -> dict[str, Any]:
        """A release's codemeta.json (the latest release by default)."""
        await self._store.ref(software_id)
        release = await self._store.version_ref(software_id, version)
        return await self._store.codemeta(release.id)

    async def zenodo(self, software_id: int, version: str | None) -> ZenodoExport:
        """A release's Zenodo deposit metadata (the OSSR crosswalk)."""
        await self._store.ref(software_id)
        release = await self._store.version_ref(software_id, version)
        outcome = validate_codemeta(await self._store.codemeta(release.id))
        record = outcome.record
        if record is None:  # stored documents always have a name; kept for type safety
            raise InvalidCodemetaError("the stored codemeta.json cannot be exported")
        record.version = release.version
        return ZenodoExport(metadata=codemeta_to_zenodo(record, self._export))

    async def search(self, query: SearchQuery) -> SearchResult:
        """Full-text search with facet filters and counts."""
        return await self._store.search(query, facet_limit=self._facet_limit)

    async def add_environment(
        self, user: Principal, software_id: int, version: str, env: EnvironmentCreate
    ) -> Environment:
        """Attach a container image or environment to a release."""
        await self._require_edit(user, software_id)
        release = await self._store.version_ref(software_id, version)
        return await self._store.add_environment(release, env)

    async def environments(self, software_id: int, version: str | None) -> list[Environment]:
        """Environments of an entry (or of one release)."""
        await self._store.ref(software_id)
        if version is not None:
            await self._store.version_ref(software_id, version)
        return await self._store.environments(software_id, version)

    async def delete_environment(
        self, user: Principal, software_id: int, environment_id: int
    ) -> None:
        """Detach an environment."""
        await self._require_edit(user, software_id)
        await self._store.delete_environment(software_id, environment_id)
