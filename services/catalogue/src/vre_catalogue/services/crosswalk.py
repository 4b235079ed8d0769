"""The OSSR crosswalk both ways: codemeta → Zenodo deposit metadata, Zenodo record → codemeta."""

from __future__ import annotations

import html
import re
from typing import Any

from vre_catalogue.config import ExportSettings
from vre_catalogue.models import Person, ZenodoCreator, ZenodoMetadata, ZenodoRelatedIdentifier
from vre_catalogue.services.codemeta import CODEMETA_3, CodemetaRecord
from vre_catalogue.services.licenses import UnknownLicenseError, spdx_id

_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|div|li|h[1-6])>|<br\s*/?>", re.IGNORECASE)


def zenodo_name(person: Person) -> str:
    """Zenodo's 'Family, Given' form of a person's name."""
    if person.type == "Organization":
        return person.name
    if person.family_name and person.given_name:
        return f"{person.family_name}, {person.given_name}"
    if person.family_name:
        return person.family_name
    name = person.name.strip()
    if "," in name or " " not in name:
        return name
    given, _, family = name.rpartition(" ")
    return f"{family}, {given}"


def _creator(person: Person, contributor_type: str | None = None) -> ZenodoCreator:
    return ZenodoCreator(
        name=zenodo_name(person),
        affiliation=person.affiliation,
        orcid=person.orcid,
        type=contributor_type,
    )


def codemeta_to_zenodo(record: CodemetaRecord, settings: ExportSettings) -> ZenodoMetadata:
    """Zenodo deposit metadata for a release, following the OSSR crosswalk.

    name→title, softwareVersion→version, author→creators, datePublished→publication_date,
    maintainer→contributors (ContactPerson), contributor→contributors (Other, the type eossr's
    crosswalk gives), readme→isDocumentedBy, codeRepository→isDerivedFrom; the configured
    grants and communities are added.
    """
    related: list[ZenodoRelatedIdentifier] = []
    if record.readme:
        related.append(
            ZenodoRelatedIdentifier(
                identifier=record.readme,
                relation="isDocumentedBy",
                resource_type="publication-softwaredocumentation",
            )
        )
    if record.code_repository:
        related.append(
            ZenodoRelatedIdentifier(
                identifier=record.code_repository,
                relation="isDerivedFrom",
                resource_type="software",
            )
        )
    return ZenodoMetadata(
        title=record.name,
        description=record.description,
        version=record.version or "",
        publication_date=record.date_published,
        creators=[_creator(p) for p in record.authors],
        contributors=[
            *(_creator(p, "ContactPerson") for p in record.maintainers),
            *(_creator(p, "Other") for p in record.contributors),
        ],
        license=record.licenses[0].lower() if record.licenses else None,
        keywords=record.keywords,
        related_identifiers=related,
        grants=[{"id": grant} for grant in settings.grants],
        communities=[{"identifier": c} for c in settings.communities],
    )


def html_to_text(value: str) -> str:
    """Plain text from Zenodo's HTML descriptions."""
    text = _BLOCK_END.sub("\n", value)
    text = html.unescape(_TAG.sub("", text))
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def _person_from_zenodo(entry: dict[str, Any]) -> dict[str, Any]:
    name = str(entry.get("name") or "").strip()
    node: dict[str, Any] = {"@type": "Person"}
    family, sep, given = name.partition(",")
    if sep and given.strip():
        node["givenName"] = given.strip()
        node["familyName"] = family.strip()
    else:
        node["name"] = name
    if entry.get("orcid"):
        node["@id"] = f"https://orcid.org/{entry['orcid']}"
    if entry.get("affiliation"):
        node["affiliation"] = {"@type": "Organization", "name": entry["affiliation"]}
    return node


def _license_from_zenodo(value: Any) -> str | None:
    raw = value.get("id") if isinstance(value, dict) else value
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return f"https://spdx.org/licenses/{spdx_id(raw)}"
    except UnknownLicenseError:
        return raw  # kept as is: the validator reports it


def _links_from_zenodo(related: list[Any]) -> dict[str, str]:
    """readme (isDocumentedBy) and codeRepository (isDerivedFrom/isSupplementTo, http URLs)."""
    links: dict[str, str] = {}
    for rel in related:
        if not isinstance(rel, dict) or not isinstance(rel.get("identifier"), str):
            continue
        relation = str(rel.get("relation", "")).lower()
        if relation == "isdocumentedby":
            links.setdefault("readme", rel["identifier"])
        elif relation in ("isderivedfrom", "issupplementto") and re.match(
            r"^https?://", rel["identifier"]
        ):
            links.setdefault("codeRepository", rel["identifier"])
    return links


def codemeta_from_zenodo(hit: dict[str, Any]) -> dict[str, Any]:
    """A codemeta 3.0 document built from a Zenodo record's metadata (the fallback when the
    record carries no usable codemeta.json)."""
    meta = hit.get("metadata") or {}
    doc: dict[str, Any] = {"@context": CODEMETA_3, "@type": "SoftwareSourceCode"}
    if meta.get("title"):
        doc["name"] = str(meta["title"]).strip()
    if meta.get("description"):
        doc["description"] = html_to_text(str(meta["description"]))
    if meta.get("version"):
        doc["softwareVersion"] = str(meta["version"])
    if meta.get("publication_date"):
        doc["datePublished"] = str(meta["publication_date"])
    license_value = _license_from_zenodo(meta.get("license"))
    if license_value:
        doc["license"] = license_value
    creators = [c for c in meta.get("creators") or [] if isinstance(c, dict)]
    if creators:
        doc["author"] = [_person_from_zenodo(c) for c in creators]
    contacts = [
        c
        for c in meta.get("contributors") or []
        if isinstance(c, dict) and c.get("type") == "ContactPerson"
    ]
    if contacts:
        doc["maintainer"] = [_person_from_zenodo(c) for c in contacts]
    others = [
        c
        for c in meta.get("contributors") or []
        if isinstance(c, dict) and c.get("type") == "Other"
    ]
    if others:
        doc["contributor"] = [_person_from_zenodo(c) for c in others]
    keywords = [k for k in meta.get("keywords") or [] if isinstance(k, str)]
    if keywords:
        doc["keywords"] = keywords
    doc.update(_links_from_zenodo(meta.get("related_identifiers") or []))
    doi = hit.get("doi") or meta.get("doi")
    if doi:
        doc["identifier"] = f"https://doi.org/{doi}"
    return doc
