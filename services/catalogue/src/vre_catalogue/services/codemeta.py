"""codemeta.json (2.0 and 3.0) validation against the OSSR rules, and normalisation.

The validator never stops at the first problem: it walks the whole document and reports every
problem by field (``loc`` as a JSON path, ``msg``, ``type``), plus warnings for the recommended
keys that are missing. Issue types: ``missing``, ``version_conflict``, ``context_unknown``,
``type_invalid``, ``date_invalid``, ``license_unknown``, ``orcid_invalid``, ``url_invalid``,
``email_invalid``, ``person_invalid``, ``recommended``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from vre_catalogue.models import Person
from vre_catalogue.services.licenses import UnknownLicenseError, spdx_id
from vre_common.problems import FieldError

Loc = tuple[str | int, ...]
CodemetaVersion = Literal["2.0", "3.0"]

CODEMETA_2 = "https://doi.org/10.5063/schema/codemeta-2.0"
CODEMETA_3 = "https://w3id.org/codemeta/3.0"
_CONTEXTS: dict[str, CodemetaVersion] = {
    CODEMETA_2.lower(): "2.0",
    "http://doi.org/10.5063/schema/codemeta-2.0": "2.0",
    "https://raw.githubusercontent.com/codemeta/codemeta/2.0/codemeta.jsonld": "2.0",
    "http://purl.org/codemeta/2.0": "2.0",
    "https://purl.org/codemeta/2.0": "2.0",
    CODEMETA_3: "3.0",
    "http://w3id.org/codemeta/3.0": "3.0",
}

REQUIRED = (
    "name",
    "description",
    "softwareVersion",
    "author",
    "datePublished",
    "license",
    "maintainer",
    "readme",
)
RECOMMENDED = (
    "codeRepository",
    "keywords",
    "funding",
    "funder",
    "copyrightHolder",
    "issueTracker",
    "identifier",
    "releaseNotes",
    "softwareRequirements",
)
SOFTWARE_TYPES = ("SoftwareSourceCode", "SoftwareApplication")
DATE_KEYS = ("datePublished", "dateCreated", "dateModified", "embargoDate", "embargoEndDate")
URL_KEYS = (
    "readme",
    "issueTracker",
    "url",
    "contIntegration",
    "continuousIntegration",
    "downloadUrl",
    "installUrl",
    "buildInstructions",
)
_REPO_SCHEMES = ("http", "https", "git", "ssh", "git+ssh", "git+https")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
_ORCID = re.compile(r"^(?:https?://)?(?:www\.)?(?:sandbox\.)?orcid\.org/(.+?)/?$", re.IGNORECASE)
_ORCID_ID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
_EMAIL = re.compile(r"^(?:mailto:)?[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOI = re.compile(r"(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)


def orcid_checksum_ok(orcid: str) -> bool:
    """ISO 7064 MOD 11-2 check of a ``0000-0000-0000-000X`` ORCID iD."""
    digits = orcid.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    result = (12 - total % 11) % 11
    return digits[-1] == ("X" if result == 10 else str(result))


def parse_orcid(value: str) -> str:
    """The bare ORCID iD of an ORCID URL or iD; ValueError with the reason if malformed."""
    text = value.strip()
    match = _ORCID.match(text)
    bare = match.group(1) if match else text
    if not _ORCID_ID.match(bare):
        raise ValueError(f"{value!r} is not an ORCID iD (expected 0000-0000-0000-000X)")
    if not orcid_checksum_ok(bare):
        raise ValueError(f"{value!r} is not a valid ORCID iD (its check digit is wrong)")
    return bare


def looks_like_orcid(value: str) -> bool:
    """True for strings meant as ORCIDs (an orcid.org URL, or 16 digits in groups)."""
    text = value.strip()
    return bool(_ORCID.match(text)) or bool(re.match(r"^\d{4}-\d{4}-\d{4}-\d{3}", text))


def normalize_doi(value: str) -> str | None:
    """``10.x/y`` (lower case) from a DOI, a doi: URI or a doi.org URL; None if no DOI."""
    text = value.strip()
    if not re.match(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?10\.", text, re.IGNORECASE):
        return None
    match = _DOI.search(text)
    return match.group(1).lower().rstrip(".") if match else None


@dataclass
class CodemetaRecord:
    """The normalised content of a codemeta.json document."""

    document: dict[str, Any]
    codemeta_version: CodemetaVersion
    name: str
    description: str
    version: str | None
    date_published: date | None
    licenses: list[str] = field(default_factory=list)
    authors: list[Person] = field(default_factory=list)
    maintainers: list[Person] = field(default_factory=list)
    contributors: list[Person] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    programming_languages: list[str] = field(default_factory=list)
    runtime_platforms: list[str] = field(default_factory=list)
    operating_systems: list[str] = field(default_factory=list)
    software_requirements: list[str] = field(default_factory=list)
    code_repository: str | None = None
    readme: str | None = None
    issue_tracker: str | None = None
    url: str | None = None
    identifiers: list[str] = field(default_factory=list)
    dois: list[str] = field(default_factory=list)
    funding: list[str] = field(default_factory=list)


@dataclass
class ValidationOutcome:
    """The result of validating one document."""

    record: CodemetaRecord | None
    errors: list[FieldError]
    warnings: list[FieldError]

    @property
    def ok(self) -> bool:
        """True if the document has no error (warnings allowed)."""
        return not self.errors


def _type_of(node: dict[str, Any]) -> Any:
    return node.get("@type", node.get("type"))


def _id_of(node: dict[str, Any]) -> Any:
    return node.get("@id", node.get("id"))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Walk:
    """One validation pass: collects issues while normalising."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document
        self.errors: list[FieldError] = []
        self.warnings: list[FieldError] = []
        self.nodes: dict[str, dict[str, Any]] = {}
        self._collect_nodes(document)

    # -- issue helpers
    def error(self, loc: Loc, msg: str, kind: str) -> None:
        self.errors.append(FieldError(loc=list(loc), msg=msg, type=kind))

    def warn(self, loc: Loc, msg: str, kind: str) -> None:
        self.warnings.append(FieldError(loc=list(loc), msg=msg, type=kind))

    def _collect_nodes(self, value: Any) -> None:
        """Index every node with an @id, so references (3.0 Role objects) resolve."""
        if isinstance(value, dict):
            node_id = _id_of(value)
            if isinstance(node_id, str) and len(value) > 1 and _type_of(value) != "Role":
                self.nodes.setdefault(node_id, value)
            for child in value.values():
                self._collect_nodes(child)
        elif isinstance(value, list):
            for child in value:
                self._collect_nodes(child)

    # -- scalar helpers
    def text(self, key: str) -> str | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.error((key,), f"'{key}' must be a string", "type_invalid")
            return None
        return value.strip() or None

    def strings(self, key: str) -> list[str]:
        """A string, a list of strings or of named objects → a list of names."""
        out: list[str] = []
        value = self.doc.get(key)
        items = _as_list(value)
        if isinstance(value, str) and key == "keywords":
            items = list(value.split(","))
        for index, item in enumerate(items):
            loc: Loc = (key, index) if isinstance(value, list) else (key,)
            if isinstance(item, str):
                if item.strip():
                    out.append(item.strip())
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                name = item["name"].strip()
                version = item.get("version")
                out.append(f"{name} {version}".strip() if isinstance(version, str) else name)
            elif isinstance(item, int | float) and not isinstance(item, bool):
                out.append(str(item))
            else:
                self.error(loc, f"'{key}' must be a string or a list of strings", "type_invalid")
        return list(dict.fromkeys(out))

    def url(self, key: str, value: Any, loc: Loc, schemes: tuple[str, ...]) -> str | None:
        if isinstance(value, dict):  # a CreativeWork (softwareHelp, readme as object)
            value = _id_of(value) or value.get("url")
        if not isinstance(value, str):
            self.error(loc, f"'{key}' must be a URL string", "type_invalid")
            return None
        text = value.strip()
        if re.match(r"^[\w.-]+@[\w.-]+:", text):
            self.error(
                loc, f"{text!r} is an scp-style address: give an https:// URL", "url_invalid"
            )
            return None
        parts = urlsplit(text)
        if parts.scheme.lower() not in schemes or not parts.netloc or re.search(r"\s", text):
            allowed = "/".join(schemes)
            self.error(loc, f"{text!r} is not a valid URL ({allowed})", "url_invalid")
            return None
        return text

    def date(self, key: str) -> date | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error((key,), f"'{key}' must be a date string (YYYY-MM-DD)", "date_invalid")
            return None
        match = _DATE.match(value.strip())
        try:
            if not match:
                raise ValueError
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            self.error((key,), f"{value!r} is not a date (YYYY-MM-DD)", "date_invalid")
            return None

    # -- structured parts
    def context(self) -> CodemetaVersion | None:
        ctx = self.doc.get("@context")
        if ctx is None:
            self.error(("@context",), "the codemeta @context is missing", "missing")
            return None
        found: list[CodemetaVersion] = []
        for item in _as_list(ctx):
            if isinstance(item, str) and item.strip().rstrip("/").lower() in _CONTEXTS:
                found.append(_CONTEXTS[item.strip().rstrip("/").lower()])
        if not found:
            self.error(
                ("@context",),
                f"the @context must be codemeta 2.0 ({CODEMETA_2}) or 3.0 ({CODEMETA_3})",
                "context_unknown",
            )
            return None
        return found[0]

    def software_type(self) -> None:
        kind = _type_of(self.doc)
        if kind is None:
            self.warn(("@type",), "@type is missing (SoftwareSourceCode assumed)", "recommended")
        elif kind not in SOFTWARE_TYPES:
            self.error(
                ("@type",),
                f"@type must be one of {', '.join(SOFTWARE_TYPES)}, not {kind!r}",
                "type_invalid",
            )

    def licenses(self) -> list[str]:
        value = self.doc.get("license")
        out: list[str] = []
        for index, item in enumerate(_as_list(value)):
            loc: Loc = ("license", index) if isinstance(value, list) else ("license",)
            candidate = item
            if isinstance(item, dict):
                candidate = item.get("identifier") or _id_of(item) or item.get("url")
                if isinstance(candidate, dict):
                    candidate = candidate.get("value")
            if not isinstance(candidate, str):
                self.error(loc, "a license must be an SPDX id or an SPDX URL", "type_invalid")
                continue
            try:
                out.append(spdx_id(candidate))
            except UnknownLicenseError as exc:
                self.error(loc, str(exc), "license_unknown")
        return list(dict.fromkeys(out))

    def persons(self, key: str) -> list[Person]:
        value = self.doc.get(key)
        out: list[Person] = []
        seen: set[str] = set()
        for index, item in enumerate(_as_list(value)):
            loc: Loc = (key, index) if isinstance(value, list) else (key,)
            node = self._resolve(item, key)
            if node is None:
                if isinstance(item, dict) and _type_of(item) == "Role":
                    continue  # a role of someone listed elsewhere in the document
                self.error(
                    loc, f"each '{key}' must be a Person or an Organization", "person_invalid"
                )
                continue
            person = self.person(node, loc)
            if person is None:
                continue
            ident = _id_of(node)
            marker = ident if isinstance(ident, str) else person.name
            if marker in seen:
                continue
            seen.add(marker)
            out.append(person)
        return out

    def _resolve(self, item: Any, key: str) -> dict[str, Any] | None:
        if isinstance(item, dict) and _type_of(item) == "Role":
            return self._resolve(item.get(f"schema:{key}", item.get(key)), key)
        found: dict[str, Any] | None = None
        if isinstance(item, str):
            found = self.nodes.get(item)
            if found is None and looks_like_orcid(item):
                found = {"@id": item, "@type": "Person"}
        elif isinstance(item, dict):
            ref = _id_of(item)
            is_reference = len(item) == 1 and isinstance(ref, str)  # {"@id": "..."}
            found = self.nodes.get(ref, item) if is_reference else item
        return found

    def person(self, node: dict[str, Any], loc: Loc) -> Person | None:
        kind = _type_of(node) or "Person"
        if kind not in ("Person", "Organization"):
            self.error(loc, f"expected a Person or an Organization, not {kind!r}", "person_invalid")
            return None
        given = node.get("givenName")
        family = node.get("familyName")
        given = " ".join(given) if isinstance(given, list) else given
        family = " ".join(family) if isinstance(family, list) else family
        name = node.get("name")
        parts = [p.strip() for p in (given, family) if isinstance(p, str) and p.strip()]
        display = name.strip() if isinstance(name, str) and name.strip() else " ".join(parts)
        orcid = self._orcid(node, loc)
        if not display:
            if orcid is None:
                self.error(
                    loc, "a person needs a name (givenName/familyName or name)", "person_invalid"
                )
                return None
            display = orcid
        email = node.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email.strip())):
            self.error((*loc, "email"), f"{email!r} is not an e-mail address", "email_invalid")
            email = None
        return Person(
            type="Organization" if kind == "Organization" else "Person",
            name=display,
            given_name=given.strip() if isinstance(given, str) and given.strip() else None,
            family_name=family.strip() if isinstance(family, str) and family.strip() else None,
            orcid=orcid,
            email=email.strip().removeprefix("mailto:") if isinstance(email, str) else None,
            affiliation=_affiliation(node.get("affiliation")),
        )

    def _orcid(self, node: dict[str, Any], loc: Loc) -> str | None:
        candidates: list[tuple[str, Any]] = [("@id" if "@id" in node else "id", _id_of(node))]
        for ident in _as_list(node.get("identifier")):
            value = ident.get("value") or _id_of(ident) if isinstance(ident, dict) else ident
            candidates.append(("identifier", value))
        for where, value in candidates:
            if not isinstance(value, str) or not looks_like_orcid(value):
                continue
            try:
                return parse_orcid(value)
            except ValueError as exc:
                self.error((*loc, where), str(exc), "orcid_invalid")
        return None

    def identifiers(self) -> tuple[list[str], list[str]]:
        idents: list[str] = []
        for key in ("identifier", "@id", "id", "sameAs"):
            for item in _as_list(self.doc.get(key)):
                value = (
                    item.get("value") or _id_of(item) or item.get("url")
                    if isinstance(item, dict)
                    else item
                )
                if isinstance(value, str) and value.strip():
                    idents.append(value.strip())
        dois = [d for d in (normalize_doi(i) for i in idents) if d]
        return list(dict.fromkeys(idents)), list(dict.fromkeys(dois))


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or value in ([], {})


def _affiliation(value: Any) -> str | None:
    names: list[str] = []
    for item in _as_list(value):
        if isinstance(item, str) and item.strip():
            names.append(item.strip())
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"].strip())
    return "; ".join(names) or None


def _check_keys(walk: _Walk, document: dict[str, Any]) -> None:
    """Required and recommended keys; version vs softwareVersion."""
    for key in REQUIRED:
        if key == "softwareVersion" and "version" in document and "softwareVersion" not in document:
            walk.error(
                ("softwareVersion",),
                "'softwareVersion' is required: the OSSR uses it instead of 'version'",
                "missing",
            )
        elif _blank(document.get(key)):
            walk.error((key,), f"the OSSR requires '{key}'", "missing")
    if "version" in document and "softwareVersion" in document:
        walk.error(
            ("version",),
            "'version' and 'softwareVersion' are both set: keep only 'softwareVersion'",
            "version_conflict",
        )
    for key in RECOMMENDED:
        if _blank(document.get(key)):
            walk.warn((key,), f"recommended key '{key}' is missing", "recommended")


def _check_urls(walk: _Walk, document: dict[str, Any]) -> dict[str, str | None]:
    """Every URL-valued key; the valid URLs by key."""
    urls: dict[str, str | None] = {}
    for key in URL_KEYS:
        if document.get(key) is not None:
            urls[key] = walk.url(key, document[key], (key,), ("http", "https"))
    repo_value = document.get("codeRepository")
    if repo_value is not None:
        first = repo_value[0] if isinstance(repo_value, list) and repo_value else repo_value
        urls["codeRepository"] = walk.url(
            "codeRepository", first, ("codeRepository",), _REPO_SCHEMES
        )
    for index, help_item in enumerate(_as_list(document.get("softwareHelp"))):
        if isinstance(help_item, str | dict):
            walk.url("softwareHelp", help_item, ("softwareHelp", index), ("http", "https"))
    return urls


def validate_codemeta(document: Any) -> ValidationOutcome:
    """Validate a codemeta.json document against the OSSR rules; report every problem."""
    if not isinstance(document, dict):
        err = FieldError(
            loc=[], msg="a codemeta.json document is a JSON object", type="type_invalid"
        )
        return ValidationOutcome(record=None, errors=[err], warnings=[])
    walk = _Walk(document)
    codemeta_version = walk.context()
    walk.software_type()

    _check_keys(walk, document)

    name = walk.text("name")
    description = walk.text("description")
    version = walk.text("softwareVersion") or walk.text("version")
    dates = {key: walk.date(key) for key in DATE_KEYS}
    licenses = walk.licenses()
    authors = walk.persons("author")
    maintainers = walk.persons("maintainer")
    contributors = walk.persons("contributor")
    for key in ("copyrightHolder", "funder"):
        for index, item in enumerate(_as_list(document.get(key))):
            if isinstance(item, dict) and _type_of(item) in ("Person", "Organization"):
                walk.person(item, (key, index) if isinstance(document.get(key), list) else (key,))

    urls = _check_urls(walk, document)
    identifiers, dois = walk.identifiers()
    keywords = walk.strings("keywords")
    languages = walk.strings("programmingLanguage")
    platforms = walk.strings("runtimePlatform")
    systems = walk.strings("operatingSystem")
    requirements = walk.strings("softwareRequirements")
    funding = walk.strings("funding")

    record = None
    if name is not None:
        record = CodemetaRecord(
            document=document,
            codemeta_version=codemeta_version or "2.0",
            name=name,
            description=description or "",
            version=version,
            date_published=dates["datePublished"],
            licenses=licenses,
            authors=authors,
            maintainers=maintainers,
            contributors=contributors,
            keywords=keywords,
            programming_languages=languages,
            runtime_platforms=platforms,
            operating_systems=systems,
            software_requirements=requirements,
            code_repository=urls.get("codeRepository"),
            readme=urls.get("readme"),
            issue_tracker=urls.get("issueTracker"),
            url=urls.get("url"),
            identifiers=identifiers,
            dois=dois,
            funding=funding,
        )
    return ValidationOutcome(record=record, errors=walk.errors, warnings=walk.warnings)


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 JSON merge patch (``null`` removes a key)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
