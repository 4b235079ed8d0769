"""codemeta.json (2.0 and 3.0) validation against the OSSR rules, and normalisation.

The validator never stops at the first problem: it walks the whole document and reports every
problem by field (``loc`` as a path, ``pointer`` as an RFC 6901 JSON pointer, ``msg``, ``type``
and ``fix``: what to write instead). It agrees with the OSSR's own validator (eossr) on what the
OSSR requires (errors) and recommends (warnings), and is stricter only where a value is really
wrong: eossr's validator lets through what its own codemeta → Zenodo converter then refuses or
silently drops (DD-MM-YYYY dates, a maintainer given as text, an ORCID URL with spaces).
docs/validation-corpus.md records the comparison on real files.

Error types: ``missing``, ``version_conflict``, ``context_unknown``, ``type_invalid``,
``date_invalid``, ``license_unknown``, ``orcid_invalid``, ``url_invalid``, ``email_invalid``,
``person_invalid``, ``unknown_key`` (a mis-cased term, which JSON-LD drops), ``json_invalid``.
Warning types: ``recommended``, ``version_format``, ``license_deprecated``, ``type_unexpected``,
``reference_as_text``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from vre_catalogue.models import CodemetaIssue, Person, json_pointer
from vre_catalogue.services.licenses import (
    SPDX_HINT,
    UnknownLicenseError,
    deprecated_replacement,
    spdx_id,
)

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

# The OSSR's requirement levels: eossr's escape_codemeta_crosswalk.csv ("required" and
# "recommended"), each with what to write when it is missing.
REQUIRED: dict[str, str] = {
    "name": 'add "name": "<the software\'s name>"',
    "description": 'add "description": "<a few sentences on what the software does>"',
    "softwareVersion": 'add "softwareVersion": "<the release, e.g. 1.2.0>"',
    "author": 'add "author": [{"@type": "Person", "givenName": "…", "familyName": "…"}]',
    "datePublished": 'add "datePublished": "YYYY-MM-DD" (the release date)',
    "license": f'add "license": {SPDX_HINT}',
    "maintainer": (
        'add "maintainer": {"@type": "Person", "givenName": "…", "familyName": "…", "email": "…"}'
    ),
    "readme": 'add "readme": "<URL of the README or the documentation>"',
}
RECOMMENDED = (
    "codeRepository",
    "memoryRequirements",
    "processorRequirements",
    "releaseNotes",
    "storageRequirements",
    "copyrightHolder",
    "funder",
    "keywords",
    "identifier",
    "funding",
    "issueTracker",
)
SOURCE_CODE = "SoftwareSourceCode"
# codemeta 2.0/3.0 terms (and schema.org ones the OSSR crosswalk lists): a key that matches one
# of them only when case is ignored is a typo that JSON-LD silently drops.
KNOWN_TERMS = [
    "@context",
    "@type",
    "@id",
    "type",
    "id",
    "name",
    "description",
    "softwareVersion",
    "version",
    "author",
    "contributor",
    "maintainer",
    "creator",
    "copyrightHolder",
    "copyrightYear",
    "funder",
    "funding",
    "publisher",
    "producer",
    "provider",
    "sponsor",
    "editor",
    "datePublished",
    "dateCreated",
    "dateModified",
    "embargoDate",
    "embargoEndDate",
    "license",
    "readme",
    "codeRepository",
    "issueTracker",
    "contIntegration",
    "continuousIntegration",
    "buildInstructions",
    "downloadUrl",
    "installUrl",
    "url",
    "sameAs",
    "identifier",
    "keywords",
    "programmingLanguage",
    "runtimePlatform",
    "operatingSystem",
    "softwareRequirements",
    "softwareSuggestions",
    "targetProduct",
    "applicationCategory",
    "applicationSubCategory",
    "memoryRequirements",
    "processorRequirements",
    "storageRequirements",
    "releaseNotes",
    "softwareHelp",
    "supportingData",
    "fileSize",
    "fileFormat",
    "permissions",
    "citation",
    "referencePublication",
    "developmentStatus",
    "relatedLink",
    "isPartOf",
    "hasPart",
    "isAccessibleForFree",
    "encoding",
    "position",
    "review",
    "hasSourceCode",
    "isSourceCodeOf",
]
_TERMS_BY_LOWER = {term.lower(): term for term in KNOWN_TERMS}
# semver.org's own regular expression (eossr warns on versions that do not match it).
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
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
_DAY_FIRST = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_YEAR_FIRST = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$")
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


class OrcidError(ValueError):
    """A malformed ORCID; ``fix`` is the corrected URL when one can be told."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def parse_orcid(value: str) -> str:
    """The bare ORCID iD of an ORCID URL or iD; OrcidError with the reason if malformed."""
    text = value.strip()
    match = _ORCID.match(text)
    bare = match.group(1) if match else text
    if not _ORCID_ID.match(bare):
        compact = re.sub(r"\s+", "", text)
        squeezed = _ORCID.match(compact)
        inner = squeezed.group(1) if squeezed else compact
        if compact != text and _ORCID_ID.match(inner) and orcid_checksum_ok(inner):
            raise OrcidError(
                f"{value!r} has spaces inside: it is no ORCID URL (and Zenodo drops it)",
                fix=f'write "https://orcid.org/{inner}"',
            )
        raise OrcidError(
            f"{value!r} is not an ORCID iD (expected 0000-0000-0000-000X)",
            fix='write "https://orcid.org/0000-0000-0000-000X" with the person\'s iD',
        )
    if not orcid_checksum_ok(bare):
        raise OrcidError(
            f"{value!r} is not a valid ORCID iD (its check digit is wrong)",
            fix="copy the iD from the person's orcid.org page",
        )
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
    errors: list[CodemetaIssue]
    warnings: list[CodemetaIssue]

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
        self.errors: list[CodemetaIssue] = []
        self.warnings: list[CodemetaIssue] = []
        self.nodes: dict[str, dict[str, Any]] = {}
        self._collect_nodes(document)

    # -- issue helpers
    def error(self, loc: Loc, msg: str, kind: str, fix: str | None = None) -> None:
        self.errors.append(_issue(loc, msg, kind, fix))

    def warn(self, loc: Loc, msg: str, kind: str, fix: str | None = None) -> None:
        self.warnings.append(_issue(loc, msg, kind, fix))

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
            self.error((key,), f"'{key}' must be a string", "type_invalid", f'write "{key}": "…"')
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
                self.error(
                    loc,
                    f"'{key}' must be a string or a list of strings",
                    "type_invalid",
                    f'write "{key}": ["…", "…"]',
                )
        return list(dict.fromkeys(out))

    def url(self, key: str, value: Any, loc: Loc, schemes: tuple[str, ...]) -> str | None:
        if isinstance(value, dict):  # a CreativeWork (softwareHelp, readme as object)
            value = _id_of(value) or value.get("url")
        if not isinstance(value, str):
            self.error(
                loc, f"'{key}' must be a URL string", "type_invalid", f'write "{key}": "https://…"'
            )
            return None
        text = value.strip()
        scp = re.match(r"^[\w.-]+@([\w.-]+):(.+?)(?:\.git)?$", text)
        if scp:
            self.error(
                loc,
                f"{text!r} is an scp-style address, not a URL",
                "url_invalid",
                f'write "https://{scp.group(1)}/{scp.group(2)}"',
            )
            return None
        parts = urlsplit(text)
        if parts.scheme.lower() not in schemes or not parts.netloc or re.search(r"\s", text):
            allowed = "/".join(schemes)
            compact = re.sub(r"\s+", "", text)
            if compact != text and compact:
                fix = f'write "{compact}"'
            elif not parts.scheme and re.match(r"^[\w-]+(\.[\w-]+)+(/|$)", text):
                fix = f'write "https://{text}"'
            else:
                fix = "write a full https:// URL"
            self.error(loc, f"{text!r} is not a valid URL ({allowed})", "url_invalid", fix)
            return None
        return text

    def date(self, key: str) -> date | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(
                (key,),
                f"'{key}' must be a date string",
                "date_invalid",
                f'write "{key}": "YYYY-MM-DD"',
            )
            return None
        match = _DATE.match(value.strip())
        try:
            if not match:
                raise ValueError
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            self.error(
                (key,),
                f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)",
                "date_invalid",
                _date_fix(value.strip()),
            )
            return None

    # -- structured parts
    def context(self) -> CodemetaVersion | None:
        ctx = self.doc.get("@context")
        if ctx is None:
            self.error(
                ("@context",),
                "the codemeta @context is missing",
                "missing",
                f'add "@context": "{CODEMETA_2}" (or "{CODEMETA_3}")',
            )
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
                f'write "@context": "{CODEMETA_2}" (or "{CODEMETA_3}")',
            )
            return None
        return found[0]

    def software_type(self) -> None:
        """SoftwareSourceCode, alone or in a list of types (JSON-LD allows several)."""
        where = "@type" if "@type" in self.doc or "type" not in self.doc else "type"
        kind = _type_of(self.doc)
        types = _as_list(kind)
        if kind is None:
            self.error((where,), "@type is missing", "missing", f'add "@type": "{SOURCE_CODE}"')
        elif not types or not all(isinstance(t, str) for t in types):
            self.error(
                (where,),
                "@type must be a string or a list of strings",
                "type_invalid",
                f'write "@type": "{SOURCE_CODE}"',
            )
        elif SOURCE_CODE in types:
            return
        elif "SoftwareApplication" in types:
            self.warn(
                (where,),
                f"the OSSR describes source code: @type {kind!r} lacks {SOURCE_CODE}",
                "type_unexpected",
                f'write "@type": ["{SOURCE_CODE}", "SoftwareApplication"]',
            )
        else:
            self.error(
                (where,),
                f"@type must be {SOURCE_CODE} (or a list containing it), not {kind!r}",
                "type_invalid",
                f'write "@type": "{SOURCE_CODE}"',
            )

    def licenses(self) -> list[str]:
        value = self.doc.get("license")
        out: list[str] = []
        for index, item in enumerate(_as_list(value)):
            loc: Loc = ("license", index) if isinstance(value, list) else ("license",)
            candidates = _license_candidates(item)
            if not candidates:
                self.error(
                    loc,
                    "a license is an SPDX id, an SPDX or opensource.org URL, or a CreativeWork "
                    "with one of those as @id, identifier, url or name",
                    "type_invalid",
                    f"write {SPDX_HINT}",
                )
                continue
            first_error: UnknownLicenseError | None = None
            for candidate in candidates:
                try:
                    found = spdx_id(candidate)
                except UnknownLicenseError as exc:
                    first_error = first_error or exc
                    continue
                out.append(found)
                replacement = deprecated_replacement(found)
                if replacement:
                    self.warn(
                        loc,
                        f"{found!r} is a deprecated SPDX id",
                        "license_deprecated",
                        f'write "https://spdx.org/licenses/{replacement}" (or the -or-later '
                        "variant if that is what you mean)",
                    )
                break
            else:
                assert first_error is not None
                self.error(loc, str(first_error), "license_unknown", first_error.fix)
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
                what = f"the text {item!r}" if isinstance(item, str) else "this value"
                self.error(
                    loc,
                    f"'{key}' must be a Person or an Organization object, not {what}",
                    "person_invalid",
                    f"write {_person_fix(item)}",
                )
                continue
            if isinstance(item, str) and item in self.nodes:
                self.warn(
                    loc,
                    f"{item!r} is text in JSON-LD: refer to the person listed elsewhere by @id",
                    "reference_as_text",
                    f'write {{"@id": "{item}"}}',
                )
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
            self.error(
                (*loc, "@type"),
                f"expected a Person or an Organization, not {kind!r}",
                "person_invalid",
                'write "@type": "Person" (or "Organization")',
            )
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
                    loc,
                    "a person needs a name (givenName/familyName or name)",
                    "person_invalid",
                    'add "givenName": "…", "familyName": "…"',
                )
                return None
            display = orcid
        email = node.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email.strip())):
            self.error(
                (*loc, "email"),
                f"{email!r} is not an e-mail address",
                "email_invalid",
                'write "email": "name@example.org"',
            )
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
            except OrcidError as exc:
                self.error((*loc, where), str(exc), "orcid_invalid", exc.fix)
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


def _issue(loc: Loc, msg: str, kind: str, fix: str | None) -> CodemetaIssue:
    return CodemetaIssue(loc=list(loc), pointer=json_pointer(loc), msg=msg, type=kind, fix=fix)


def _date_fix(value: str) -> str:
    """What to write for a date in another order (DD-MM-YYYY, YYYY/MM/DD…)."""
    year_first = _YEAR_FIRST.match(value)
    if year_first:
        year, month, day = (int(g) for g in year_first.groups())
        return f'write "{year:04d}-{month:02d}-{day:02d}"'
    day_first = _DAY_FIRST.match(value)
    if day_first:
        first, second, year = (int(g) for g in day_first.groups())
        if first > 12 >= second:  # unambiguous: day first
            return f'write "{year:04d}-{second:02d}-{first:02d}"'
        if second > 12 >= first:  # month first (US order)
            return f'write "{year:04d}-{first:02d}-{second:02d}"'
        if first <= 12 and second <= 12:
            return (
                f'write "{year:04d}-{second:02d}-{first:02d}" if {value!r} is day {first} of '
                f'month {second} (or "{year:04d}-{first:02d}-{second:02d}" if month first)'
            )
    return 'write the date as "YYYY-MM-DD"'


def _person_fix(value: Any) -> str:
    """A Person object to write instead of a person given as text ("Name <email>")."""
    node: dict[str, Any] = {"@type": "Person"}
    if isinstance(value, str):
        text = value.strip()
        email = re.search(r"<?([^<>\s@]+@[^<>\s@]+\.[^<>\s@]+)>?", text)
        if email:
            node["email"] = email.group(1).removeprefix("mailto:")
            text = (text[: email.start()] + text[email.end() :]).strip(" ,;()")
        given, _, family = text.rpartition(" ")
        if given:
            node["givenName"], node["familyName"] = given, family
        elif family:
            node["name"] = family
    if len(node) == 1:
        node.update(givenName="…", familyName="…")
    return json.dumps(node, ensure_ascii=False)


def _license_candidates(item: Any) -> list[str]:
    """The strings that may name a license: the value, or a CreativeWork's @id, identifier,
    url and name (in that order: real files put the SPDX URL in any of them)."""
    if isinstance(item, str):
        return [item]
    if not isinstance(item, dict):
        return []
    out: list[str] = []
    for value in (_id_of(item), item.get("identifier"), item.get("url"), item.get("name")):
        for one in _as_list(value):
            text = one.get("value") if isinstance(one, dict) else one
            if isinstance(text, str) and text.strip():
                out.append(text)
    return out


def _versions(walk: _Walk, document: dict[str, Any]) -> str | None:
    """softwareVersion (required by the OSSR) and version: equal, or a problem naming both."""
    values: dict[str, str] = {}
    for key in ("softwareVersion", "version"):
        value = document.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            walk.error(
                (key,),
                f"'{key}' is the number {value!r}: a version is text (as a number 1.10 is 1.1)",
                "type_invalid",
                f'write "{key}": "{value}"',
            )
        elif value is not None and not isinstance(value, str):
            walk.error((key,), f"'{key}' must be a string", "type_invalid", f'write "{key}": "…"')
        elif isinstance(value, str) and value.strip():
            values[key] = value.strip()
    software, plain = values.get("softwareVersion"), values.get("version")
    raw = document.get("softwareVersion")
    if software is None and (raw is None or isinstance(raw, str)):  # absent, null or blank
        reason = (
            "'softwareVersion' is empty"
            if isinstance(raw, str)
            else ("the OSSR requires 'softwareVersion'")
        )
        if plain is not None:
            reason += " (it does not read 'version')"
        walk.error(
            ("softwareVersion",),
            reason,
            "missing",
            f'add "softwareVersion": "{plain}"' if plain else REQUIRED["softwareVersion"],
        )
    if software is not None and plain is not None and software != plain:
        walk.error(
            ("version",),
            f"'version' is {plain!r} but 'softwareVersion' is {software!r}: both name the "
            "release, so they must be equal",
            "version_conflict",
            f'write "version": "{software}" (or remove "version")',
        )
    if software is not None and not _SEMVER.match(software.removeprefix("v")):
        walk.warn(
            ("softwareVersion",),
            f"{software!r} is not a semantic version (semver.org), which the OSSR recommends",
            "version_format",
            'write MAJOR.MINOR.PATCH, e.g. "1.2.0"',
        )
    return software or plain


def _check_keys(walk: _Walk, document: dict[str, Any]) -> None:
    """Required and recommended keys (the OSSR's levels) and keys that are typos of a term."""
    for key, fix in REQUIRED.items():
        if key != "softwareVersion" and _blank(document.get(key)):
            walk.error((key,), f"the OSSR requires '{key}'", "missing", fix)
    for key in RECOMMENDED:
        if _blank(document.get(key)):
            walk.warn((key,), f"the OSSR recommends '{key}'", "recommended", f'add "{key}"')
    for key in document:
        term = _TERMS_BY_LOWER.get(key.lower())
        if term is not None and term != key:
            walk.error(
                (key,),
                f"'{key}' is no codemeta term (terms are case-sensitive): it is ignored",
                "unknown_key",
                f'rename it to "{term}"',
            )


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
        err = _issue(
            (),
            "a codemeta.json document is a JSON object",
            "type_invalid",
            '{"@context": "https://doi.org/10.5063/schema/codemeta-2.0", '
            '"@type": "SoftwareSourceCode", …}',
        )
        return ValidationOutcome(record=None, errors=[err], warnings=[])
    walk = _Walk(document)
    codemeta_version = walk.context()
    walk.software_type()

    _check_keys(walk, document)

    name = walk.text("name")
    description = walk.text("description")
    version = _versions(walk, document)
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


_SYNTAX_FIXES = (
    (
        "Expecting ',' delimiter",
        "add the missing comma, or close the string, list or object "
        "that is still open before this place",
    ),
    (
        "Expecting property name enclosed in double quotes",
        "remove the comma after the last member, or put the key in double quotes",
    ),
    ("Expecting ':' delimiter", 'write "key": value'),
    ("Invalid control character", "escape the line break or tab inside the string (\\n, \\t)"),
    ("Invalid \\escape", "write a backslash as \\\\ inside a string"),
    ("Extra data", "remove what follows the closing brace of the document"),
    ("Unterminated string", 'close the string with a double quote (")'),
    (
        "Expecting value",
        "write a value here (a string in double quotes, a number, true, false, "
        "null, a list or an object); single quotes and trailing commas are not JSON",
    ),
)


def json_syntax_issue(text: str, position: int, reason: str) -> CodemetaIssue:
    """A JSON syntax error as a problem a person can act on: line, column, reason, the place."""
    line = text.count("\n", 0, position) + 1
    line_start = text.rfind("\n", 0, position) + 1
    column = position - line_start + 1
    line_end = text.find("\n", position)
    source = text[line_start : line_end if line_end != -1 else len(text)]
    near = source[max(0, column - 41) : column + 20].strip()
    fix = next((f for start, f in _SYNTAX_FIXES if reason.startswith(start)), None)
    return CodemetaIssue(
        loc=["body"],
        pointer="",
        msg=f"the body is not valid JSON: {reason} at line {line}, column {column}, near {near!r}",
        type="json_invalid",
        fix=fix or "correct the JSON at that place",
        line=line,
        column=column,
    )


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
