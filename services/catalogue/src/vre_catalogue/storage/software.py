"""SQL storage of catalogue entries, releases, persons, facets and environments."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, get_args

from packaging.version import InvalidVersion, Version
from sqlalchemy import delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vre_catalogue.errors import (
    EnvironmentExistsError,
    EnvironmentNotFoundError,
    NameTakenError,
    SoftwareNotFoundError,
    VersionExistsError,
    VersionNotFoundError,
)
from vre_catalogue.models import (
    CodemetaIssue,
    Environment,
    EnvironmentCreate,
    FacetCount,
    FacetName,
    Facets,
    Person,
    Role,
    SearchQuery,
    SearchResult,
    Software,
    SoftwareHit,
    SoftwareRef,
    SoftwareVersion,
    VersionRef,
)
from vre_catalogue.services.codemeta import CodemetaRecord, normalize_doi
from vre_catalogue.storage.schema import (
    CreditRow,
    EnvironmentRow,
    HarvestJobRow,
    IdentifierRow,
    PersonRow,
    SoftwareRow,
    TermRow,
    VersionRow,
)
from vre_catalogue.storage.search import SearchDocument, SearchIndex, query_terms

FACETS: tuple[FacetName, ...] = get_args(FacetName)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def name_key(name: str) -> str:
    """The key entries are identified by: the name, case and spacing folded."""
    return re.sub(r"\s+", " ", name.strip()).lower()


def _person_key(person: Person) -> str:
    if person.orcid:
        return f"orcid:{person.orcid}"
    return f"name:{person.type}:{name_key(person.name)}|{(person.email or '').lower()}"


def _version_key(version: str) -> tuple[int, Any]:
    try:
        return (1, Version(version.strip().lstrip("vV")))
    except InvalidVersion:
        return (0, version)


def latest_first(rows: Sequence[VersionRow]) -> list[VersionRow]:
    """Releases newest first: by publication date, then version number, then arrival."""
    return sorted(
        rows,
        key=lambda r: (r.date_published or date.min, _version_key(r.version), r.id),
        reverse=True,
    )


class SoftwareStore:
    """Queries and writes of the catalogue; returns pydantic models, never ORM rows."""

    def __init__(self, session: AsyncSession, search: SearchIndex) -> None:
        self._session = session
        self._search = search

    # ------------------------------------------------------------------ lookups

    async def ref(self, software_id: int) -> SoftwareRef:
        """The entry's owner and provenance; SoftwareNotFoundError if none."""
        row = await self._session.get(SoftwareRow, software_id)
        if row is None:
            raise SoftwareNotFoundError(f"no software entry {software_id}")
        return _ref(row)

    async def find_by_name(self, name: str) -> SoftwareRef | None:
        """The entry with this name (case and spacing folded)."""
        row = await self._session.scalar(
            select(SoftwareRow).where(SoftwareRow.name_key == name_key(name))
        )
        return _ref(row) if row else None

    async def find_by_concept(self, concept_id: str) -> SoftwareRef | None:
        """The entry harvested from this Zenodo concept record."""
        row = await self._session.scalar(
            select(SoftwareRow).where(SoftwareRow.zenodo_concept_id == concept_id)
        )
        return _ref(row) if row else None

    async def find_by_dois(self, dois: Sequence[str]) -> SoftwareRef | None:
        """The entry one of whose releases has one of these DOIs."""
        if not dois:
            return None
        row = await self._session.scalar(
            select(SoftwareRow)
            .join(IdentifierRow, IdentifierRow.software_id == SoftwareRow.id)
            .where(IdentifierRow.scheme == "doi", IdentifierRow.value.in_(list(dois)))
            .limit(1)
        )
        return _ref(row) if row else None

    async def version_ref(self, software_id: int, version: str | None) -> VersionRef:
        """A release by version string, or the latest one; VersionNotFoundError if none."""
        stmt = select(VersionRow).where(VersionRow.software_id == software_id)
        if version:
            stmt = stmt.where(VersionRow.version == version)
        rows = latest_first(list(await self._session.scalars(stmt)))
        row = rows[0] if rows else None
        if row is None:
            raise VersionNotFoundError(f"software {software_id} has no version {version!r}")
        return _version_ref(row)

    async def find_version(self, software_id: int, version: str) -> VersionRef | None:
        """A release by version string, if it exists."""
        row = await self._session.scalar(
            select(VersionRow).where(
                VersionRow.software_id == software_id, VersionRow.version == version
            )
        )
        return _version_ref(row) if row else None

    async def version_by_record(self, record_id: str) -> VersionRef | None:
        """The release harvested from this Zenodo record."""
        row = await self._session.scalar(
            select(VersionRow).where(VersionRow.zenodo_record_id == record_id).limit(1)
        )
        return _version_ref(row) if row else None

    async def codemeta(self, version_id: int) -> dict[str, Any]:
        """The codemeta.json document of a release."""
        row = await self._session.get(VersionRow, version_id)
        if row is None:
            raise VersionNotFoundError(f"no release {version_id}")
        return dict(row.codemeta)

    # ------------------------------------------------------------------ writes

    async def create_entry(
        self,
        *,
        name: str,
        registrant_key: str,
        registrant_name: str,
        source: str,
        community: str | None = None,
        concept_id: str | None = None,
        project: str | None = None,
    ) -> int:
        """A new, still empty entry (add a release, then ``refresh``)."""
        now = utcnow()
        row = SoftwareRow(
            name=name,
            name_key=name_key(name),
            description="",
            registrant_key=registrant_key,
            registrant_name=registrant_name,
            source=source,
            community=community,
            project=project,
            zenodo_concept_id=concept_id,
            latest_version="",
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        await self._flush(NameTakenError(f"an entry named {name!r} exists already"))
        return row.id

    async def set_provenance(
        self, software_id: int, *, community: str | None, concept_id: str | None
    ) -> None:
        """Record the Zenodo community and concept of an entry where they are unknown."""
        row = await self._session.get(SoftwareRow, software_id)
        if row is None:
            raise SoftwareNotFoundError(f"no software entry {software_id}")
        if community and not row.community:
            row.community = community
        if concept_id and not row.zenodo_concept_id:
            row.zenodo_concept_id = concept_id
        await self._flush(NameTakenError("this Zenodo concept belongs to another entry"))

    async def add_version(
        self,
        software_id: int,
        record: CodemetaRecord,
        *,
        version: str,
        source: str,
        warnings: Sequence[CodemetaIssue],
        zenodo_record_id: str | None = None,
        source_updated: datetime | None = None,
    ) -> int:
        """Store a new release of an entry."""
        now = utcnow()
        row = VersionRow(
            software_id=software_id,
            version=version,
            source=source,
            zenodo_record_id=zenodo_record_id,
            source_updated=source_updated,
            created_at=now,
        )
        _fill_version(row, record, warnings, now)
        self._session.add(row)
        await self._flush(VersionExistsError(f"version {version!r} is registered already"))
        await self._write_details(row, record)
        return row.id

    async def replace_version(
        self,
        version_id: int,
        record: CodemetaRecord,
        *,
        version: str,
        warnings: Sequence[CodemetaIssue],
        source_updated: datetime | None = None,
    ) -> None:
        """Replace a release's codemeta.json and everything derived from it."""
        row = await self._session.get(VersionRow, version_id)
        if row is None:
            raise VersionNotFoundError(f"no release {version_id}")
        row.version = version
        if source_updated is not None:
            row.source_updated = source_updated
        _fill_version(row, record, warnings, utcnow())
        await self._flush(VersionExistsError(f"version {version!r} is registered already"))
        await self._write_details(row, record)

    async def link_record(
        self, version_id: int, *, record_id: str, source_updated: datetime, dois: list[str]
    ) -> None:
        """Note that a release registered through the API is this Zenodo record."""
        row = await self._session.get(VersionRow, version_id)
        if row is None:
            raise VersionNotFoundError(f"no release {version_id}")
        row.zenodo_record_id = record_id
        row.source_updated = source_updated
        known = set(
            await self._session.scalars(
                select(IdentifierRow.value).where(IdentifierRow.version_id == version_id)
            )
        )
        for doi in dois:
            if doi not in known:
                self._session.add(
                    IdentifierRow(
                        software_id=row.software_id, version_id=row.id, scheme="doi", value=doi
                    )
                )
        await self._session.flush()

    async def delete_entry(self, software_id: int) -> None:
        """Delete an entry with its releases, credits, facets and environments."""
        await self._search.remove(self._session, software_id)
        await self._session.execute(delete(SoftwareRow).where(SoftwareRow.id == software_id))

    async def delete_version(self, version_id: int) -> None:
        """Delete one release (call ``refresh`` on its entry afterwards)."""
        await self._session.execute(delete(VersionRow).where(VersionRow.id == version_id))

    async def refresh(self, software_id: int) -> bool:
        """Mirror the latest release onto the entry, its facets and its search document.

        An entry left without releases is deleted; returns False then.
        """
        entry = await self._session.get(SoftwareRow, software_id)
        if entry is None:
            raise SoftwareNotFoundError(f"no software entry {software_id}")
        releases = latest_first(
            list(
                await self._session.scalars(
                    select(VersionRow).where(VersionRow.software_id == software_id)
                )
            )
        )
        if not releases:
            await self.delete_entry(software_id)
            return False
        latest = releases[0]
        name = str(latest.codemeta.get("name") or entry.name).strip()
        entry.name = name
        entry.name_key = name_key(name)
        entry.description = latest.description
        entry.latest_version = latest.version
        entry.updated_at = utcnow()
        await self._flush(NameTakenError(f"an entry named {name!r} exists already"))

        await self._session.execute(delete(TermRow).where(TermRow.software_id == software_id))
        terms: dict[str, list[str]] = {
            "keyword": latest.keywords,
            "license": latest.licenses,
            "language": latest.programming_languages,
            "platform": latest.runtime_platforms,
            "community": [entry.community] if entry.community else [],
        }
        for kind, values in terms.items():
            for value in dict.fromkeys(v[:300] for v in values):
                self._session.add(
                    TermRow(
                        software_id=software_id, kind=kind, value=value, value_key=value.lower()
                    )
                )
        await self._session.flush()
        credits = await self._credits([latest.id])
        await self._search.put(
            self._session,
            software_id,
            SearchDocument(
                name=name,
                description=latest.description,
                keywords=latest.keywords,
                authors=[p.name for role, p in credits.get(latest.id, []) if role == "author"],
            ),
        )
        return True

    async def _write_details(self, row: VersionRow, record: CodemetaRecord) -> None:
        await self._session.execute(delete(CreditRow).where(CreditRow.version_id == row.id))
        await self._session.execute(delete(IdentifierRow).where(IdentifierRow.version_id == row.id))
        roles: list[tuple[Role, list[Person]]] = [
            ("author", record.authors),
            ("maintainer", record.maintainers),
            ("contributor", record.contributors),
        ]
        for role, people in roles:
            for position, person in enumerate(people):
                person_id = await self._person_id(person)
                self._session.add(
                    CreditRow(version_id=row.id, role=role, position=position, person_id=person_id)
                )
        seen: set[tuple[str, str]] = set()
        for ident in [*record.identifiers, *record.dois]:
            doi = normalize_doi(ident)
            scheme, value = ("doi", doi) if doi else (_scheme(ident), ident[:1000])
            if (scheme, value) in seen:
                continue
            seen.add((scheme, value))
            self._session.add(
                IdentifierRow(
                    software_id=row.software_id, version_id=row.id, scheme=scheme, value=value
                )
            )
        await self._session.flush()

    async def _person_id(self, person: Person) -> int:
        key = _person_key(person)
        row = await self._session.scalar(select(PersonRow).where(PersonRow.person_key == key))
        if row is None:
            row = PersonRow(person_key=key, kind=person.type)
            self._session.add(row)
        row.name = person.name[:300]
        row.given_name = person.given_name
        row.family_name = person.family_name
        row.orcid = person.orcid
        row.email = person.email or row.email
        row.affiliation = person.affiliation or row.affiliation
        await self._session.flush()
        return row.id

    async def _flush(self, conflict: Exception) -> None:
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise conflict from exc

    # ------------------------------------------------------------------ reads

    async def get(self, software_id: int) -> Software:
        """An entry with its latest release's description."""
        row = await self._session.get(SoftwareRow, software_id)
        if row is None:
            raise SoftwareNotFoundError(f"no software entry {software_id}")
        versions = latest_first(
            list(
                await self._session.scalars(
                    select(VersionRow).where(VersionRow.software_id == software_id)
                )
            )
        )
        latest = versions[0] if versions else None
        credits = await self._credits([latest.id] if latest else [])
        people = credits.get(latest.id, []) if latest else []
        dois = list(
            await self._session.scalars(
                select(IdentifierRow.value)
                .where(IdentifierRow.software_id == software_id, IdentifierRow.scheme == "doi")
                .order_by(IdentifierRow.id)
            )
        )
        return Software(
            id=row.id,
            name=row.name,
            description=row.description,
            registrant=row.registrant_name,
            project=row.project,
            community=row.community,
            source=_source(row.source),
            latest_version=row.latest_version,
            versions=[v.version for v in versions],
            licenses=list(latest.licenses) if latest else [],
            keywords=list(latest.keywords) if latest else [],
            programming_languages=list(latest.programming_languages) if latest else [],
            runtime_platforms=list(latest.runtime_platforms) if latest else [],
            authors=[p for role, p in people if role == "author"],
            maintainers=[p for role, p in people if role == "maintainer"],
            code_repository=latest.code_repository if latest else None,
            readme=latest.readme if latest else None,
            dois=list(dict.fromkeys(dois)),
            zenodo_concept_id=row.zenodo_concept_id,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
        )

    async def versions(self, software_id: int, version: str | None = None) -> list[SoftwareVersion]:
        """Every release of an entry (or the one asked for), newest first."""
        stmt = select(VersionRow).where(VersionRow.software_id == software_id)
        if version is not None:
            stmt = stmt.where(VersionRow.version == version)
        rows = latest_first(list(await self._session.scalars(stmt)))
        ids = [r.id for r in rows]
        credits = await self._credits(ids)
        dois: dict[int, list[str]] = defaultdict(list)
        for version_id, value in await self._session.execute(
            select(IdentifierRow.version_id, IdentifierRow.value).where(
                IdentifierRow.version_id.in_(ids), IdentifierRow.scheme == "doi"
            )
        ):
            dois[version_id].append(value)
        environments = await self._environments(ids)
        return [
            SoftwareVersion(
                version=r.version,
                date_published=r.date_published,
                description=r.description,
                licenses=list(r.licenses),
                authors=[p for role, p in credits.get(r.id, []) if role == "author"],
                maintainers=[p for role, p in credits.get(r.id, []) if role == "maintainer"],
                keywords=list(r.keywords),
                programming_languages=list(r.programming_languages),
                runtime_platforms=list(r.runtime_platforms),
                code_repository=r.code_repository,
                readme=r.readme,
                dois=dois.get(r.id, []),
                codemeta_version="3.0" if r.codemeta_version == "3.0" else "2.0",
                source=_source(r.source),
                zenodo_record_id=r.zenodo_record_id,
                environments=environments.get(r.id, []),
                warnings=[CodemetaIssue.model_validate(w) for w in r.warnings],
                created_at=as_utc(r.created_at),
                updated_at=as_utc(r.updated_at),
            )
            for r in rows
        ]

    async def _credits(self, version_ids: list[int]) -> dict[int, list[tuple[str, Person]]]:
        out: dict[int, list[tuple[str, Person]]] = defaultdict(list)
        if not version_ids:
            return out
        rows = await self._session.execute(
            select(CreditRow.version_id, CreditRow.role, PersonRow)
            .join(PersonRow, PersonRow.id == CreditRow.person_id)
            .where(CreditRow.version_id.in_(version_ids))
            .order_by(CreditRow.version_id, CreditRow.role, CreditRow.position)
        )
        for version_id, role, person in rows:
            out[version_id].append((role, _person(person)))
        return out

    # ------------------------------------------------------------------ search

    async def search(self, query: SearchQuery, *, facet_limit: int) -> SearchResult:
        """Ranked full text plus facet filters; facet counts over the whole filtered result."""
        terms = query_terms(query.q or "")
        if terms:
            fts = self._search.matches(terms)
            base = select(SoftwareRow.id.label("sid"), fts.c.rank.label("rank")).join(
                fts, fts.c.software_id == SoftwareRow.id
            )
        else:
            base = select(SoftwareRow.id.label("sid"), literal(0.0).label("rank"))
        for kind, values in query.filters.items():
            for value in values:
                base = base.where(
                    SoftwareRow.id.in_(
                        select(TermRow.software_id).where(
                            TermRow.kind == kind, TermRow.value_key == value.strip().lower()
                        )
                    )
                )
        filtered = base.subquery("filtered")
        total = int(await self._session.scalar(select(func.count()).select_from(filtered)) or 0)
        page_rows = list(
            await self._session.execute(
                select(filtered.c.sid, filtered.c.rank)
                .join(SoftwareRow, SoftwareRow.id == filtered.c.sid)
                .order_by(
                    filtered.c.rank.desc(), SoftwareRow.updated_at.desc(), SoftwareRow.id.desc()
                )
                .offset((query.page - 1) * query.size)
                .limit(query.size)
            )
        )
        ranks = {int(sid): float(rank) for sid, rank in page_rows}
        hits = await self._hits(list(ranks), ranks if terms else None)

        facets: dict[str, list[FacetCount]] = {kind: [] for kind in FACETS}
        counted = await self._session.execute(
            select(
                TermRow.kind,
                func.min(TermRow.value),
                func.count(func.distinct(TermRow.software_id)),
            )
            .where(TermRow.software_id.in_(select(filtered.c.sid)))
            .group_by(TermRow.kind, TermRow.value_key)
        )
        for facet, value, count in counted:
            if facet in facets:
                facets[facet].append(FacetCount(value=value, count=int(count)))
        for counts in facets.values():
            counts.sort(key=lambda c: (-c.count, c.value.lower()))
            del counts[facet_limit:]
        return SearchResult(
            total=total,
            page=query.page,
            size=query.size,
            items=hits,
            facets=Facets.model_validate(facets),
        )

    async def _hits(self, ids: list[int], ranks: dict[int, float] | None) -> list[SoftwareHit]:
        if not ids:
            return []
        rows = await self._session.execute(
            select(SoftwareRow, VersionRow)
            .join(
                VersionRow,
                (VersionRow.software_id == SoftwareRow.id)
                & (VersionRow.version == SoftwareRow.latest_version),
            )
            .where(SoftwareRow.id.in_(ids))
        )
        by_id: dict[int, SoftwareHit] = {}
        for entry, version in rows:
            by_id[entry.id] = SoftwareHit(
                id=entry.id,
                name=entry.name,
                description=entry.description,
                latest_version=entry.latest_version,
                licenses=list(version.licenses),
                keywords=list(version.keywords),
                programming_languages=list(version.programming_languages),
                runtime_platforms=list(version.runtime_platforms),
                community=entry.community,
                project=entry.project,
                score=round(ranks[entry.id], 6) if ranks is not None else None,
            )
        return [by_id[i] for i in ids if i in by_id]

    # ------------------------------------------------------------------ environments

    async def add_environment(self, version: VersionRef, env: EnvironmentCreate) -> Environment:
        """Attach a container image or environment to a release."""
        row = EnvironmentRow(
            version_id=version.id,
            kind=env.kind,
            image=env.image,
            digest=env.digest,
            description=env.description,
            created_at=utcnow(),
        )
        self._session.add(row)
        await self._flush(
            EnvironmentExistsError(f"{env.kind} {env.image!r} is attached to this release already")
        )
        return _environment(row, version.software_id, version.version)

    async def environments(self, software_id: int, version: str | None) -> list[Environment]:
        """Environments of an entry's releases (or of one release)."""
        stmt = select(VersionRow.id).where(VersionRow.software_id == software_id)
        if version is not None:
            stmt = stmt.where(VersionRow.version == version)
        ids = list(await self._session.scalars(stmt))
        found = await self._environments(ids)
        return [env for version_id in ids for env in found.get(version_id, [])]

    async def delete_environment(self, software_id: int, environment_id: int) -> None:
        """Detach an environment; EnvironmentNotFoundError if it is not the entry's."""
        row = await self._session.scalar(
            select(EnvironmentRow)
            .join(VersionRow, VersionRow.id == EnvironmentRow.version_id)
            .where(EnvironmentRow.id == environment_id, VersionRow.software_id == software_id)
        )
        if row is None:
            raise EnvironmentNotFoundError(
                f"software {software_id} has no environment {environment_id}"
            )
        await self._session.delete(row)
        await self._session.flush()

    async def _environments(self, version_ids: list[int]) -> dict[int, list[Environment]]:
        out: dict[int, list[Environment]] = defaultdict(list)
        if not version_ids:
            return out
        rows = await self._session.execute(
            select(EnvironmentRow, VersionRow.software_id, VersionRow.version)
            .join(VersionRow, VersionRow.id == EnvironmentRow.version_id)
            .where(EnvironmentRow.version_id.in_(version_ids))
            .order_by(EnvironmentRow.id)
        )
        for env, software_id, version in rows:
            out[env.version_id].append(_environment(env, software_id, version))
        return out


def _fill_version(
    row: VersionRow, record: CodemetaRecord, warnings: Sequence[CodemetaIssue], now: datetime
) -> None:
    row.date_published = record.date_published
    row.description = record.description
    row.codemeta = record.document
    row.codemeta_version = record.codemeta_version
    row.licenses = list(record.licenses)
    row.keywords = list(record.keywords)
    row.programming_languages = list(record.programming_languages)
    row.runtime_platforms = list(record.runtime_platforms)
    row.code_repository = record.code_repository
    row.readme = record.readme
    row.warnings = [w.model_dump() for w in warnings]
    row.updated_at = now


def _scheme(identifier: str) -> str:
    return "url" if re.match(r"^https?://", identifier) else "other"


def _source(value: str) -> Any:
    return "harvest" if value == "harvest" else "api"


def _ref(row: SoftwareRow) -> SoftwareRef:
    return SoftwareRef(
        id=row.id,
        name=row.name,
        registrant_key=row.registrant_key,
        project=row.project,
        source=_source(row.source),
        community=row.community,
        zenodo_concept_id=row.zenodo_concept_id,
    )


def _version_ref(row: VersionRow) -> VersionRef:
    return VersionRef(
        id=row.id,
        software_id=row.software_id,
        version=row.version,
        zenodo_record_id=row.zenodo_record_id,
        source_updated=as_utc(row.source_updated) if row.source_updated else None,
    )


def _person(row: PersonRow) -> Person:
    return Person(
        type="Organization" if row.kind == "Organization" else "Person",
        name=row.name,
        given_name=row.given_name,
        family_name=row.family_name,
        orcid=row.orcid,
        email=row.email,
        affiliation=row.affiliation,
    )


def _environment(row: EnvironmentRow, software_id: int, version: str) -> Environment:
    return Environment(
        id=row.id,
        software_id=software_id,
        version=version,
        kind=row.kind,
        image=row.image,
        digest=row.digest,
        description=row.description,
        created_at=as_utc(row.created_at),
    )


__all__ = ["FACETS", "HarvestJobRow", "SoftwareStore", "as_utc", "name_key", "utcnow"]
