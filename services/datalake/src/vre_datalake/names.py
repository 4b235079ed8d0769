"""The naming rules of scopes, DID names, RSEs and metadata keys (Rucio's generic schema, stricter).

Rucio allows ``/`` anywhere in a DID name; we also refuse what turns names into paths that
escape or confuse: a leading or trailing ``/``, ``//``, ``.``/``..`` segments, control
characters, and a last segment that is one of our sub-resource words (``…/content``).
"""

from __future__ import annotations

import re
import unicodedata

from vre_datalake.errors import InvalidNameError

SCOPE_MAX = 25  # rucio.common.schema.generic.SCOPE_LENGTH
NAME_MAX = 250  # rucio.common.schema.generic.NAME_LENGTH
ACCOUNT_MAX = 25  # rucio.common.schema.generic.ACCOUNT_LENGTH
RSE_MAX = 255
META_KEY_MAX = 100

_SCOPE = re.compile(r"^[a-zA-Z0-9_.\-]+$")
_NAME = re.compile(r"^[A-Za-z0-9][/A-Za-z0-9.\-_]*$")
_RSE = re.compile(r"^[A-Z0-9]+([_-][A-Z0-9]+)*$")
_ACCOUNT = re.compile(r"^[a-z0-9\-_]+$")
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Words that follow a DID name in our URLs (…/dids/{scope}/{name}/content); a name ending in
# one of them after a slash could not be addressed.
RESERVED_SUFFIXES = frozenset(
    {"content", "attach", "detach", "metadata", "replicas", "archive", "rules", "parents"}
)


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def check_scope(scope: str, field: str = "scope") -> str:
    """Return ``scope`` if it is a valid Rucio scope name, else raise 422 naming ``field``."""
    if _has_control(scope):
        raise InvalidNameError(field, "control characters are not allowed")
    if not scope:
        raise InvalidNameError(field, "must not be empty")
    if len(scope) > SCOPE_MAX:
        raise InvalidNameError(field, f"at most {SCOPE_MAX} characters ({len(scope)} given)")
    if not _SCOPE.match(scope) or scope in (".", ".."):
        raise InvalidNameError(field, "only letters, digits, '.', '-' and '_' are allowed")
    return scope


def check_name(name: str, field: str = "name") -> str:
    """Return ``name`` if it is a valid DID name, else raise 422 naming ``field``."""
    if _has_control(name):
        raise InvalidNameError(field, "control characters are not allowed")
    if not name:
        raise InvalidNameError(field, "must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidNameError(field, f"at most {NAME_MAX} characters ({len(name)} given)")
    if name.startswith("/"):
        raise InvalidNameError(field, "must not start with '/'")
    if name.endswith("/") or "//" in name:
        raise InvalidNameError(field, "must not end with '/' or contain '//'")
    segments = name.split("/")
    if any(seg in (".", "..") for seg in segments):
        raise InvalidNameError(field, "'.' and '..' path segments are not allowed")
    if not _NAME.match(name) or any(not seg[0].isalnum() for seg in segments):
        raise InvalidNameError(
            field,
            "only ASCII letters, digits, '.', '-', '_' and '/' are allowed, and each "
            "'/'-separated part must start with a letter or digit",
        )
    if len(segments) > 1 and segments[-1] in RESERVED_SUFFIXES:
        raise InvalidNameError(
            field, f"a name must not end with '/{segments[-1]}' (reserved in the API's URLs)"
        )
    return name


def check_rse(rse: str, field: str = "rse") -> str:
    """Return ``rse`` if it is a valid RSE name, else raise 422 naming ``field``."""
    if _has_control(rse):
        raise InvalidNameError(field, "control characters are not allowed")
    if not rse or len(rse) > RSE_MAX:
        raise InvalidNameError(field, f"must have 1 to {RSE_MAX} characters")
    if not _RSE.match(rse):
        raise InvalidNameError(
            field, "upper-case letters and digits, in groups joined by single '-' or '_'"
        )
    return rse


def check_meta_key(key: str, field: list[str | int] | str = "metadata") -> str:
    """Return ``key`` if it is a usable metadata key, else raise 422."""
    loc: list[str | int] = [field, key] if isinstance(field, str) else [*field, key]
    if _has_control(key) or not key or len(key) > META_KEY_MAX or not _META_KEY.match(key):
        raise InvalidNameError(
            loc,
            f"metadata keys are 1 to {META_KEY_MAX} letters, digits or '_', "
            "not starting with a digit",
        )
    return key


def parse_did(did: str, field: str = "did") -> tuple[str, str]:
    """Split and check ``scope:name``."""
    scope, sep, name = did.partition(":")
    if not sep:
        raise InvalidNameError(field, "expected 'scope:name'")
    return check_scope(scope, field), check_name(name, field)


def account_name_from(username: str, *, max_length: int) -> str:
    """A Rucio account name derived from a preferred username (lower case, [a-z0-9-_])."""
    ascii_name = unicodedata.normalize("NFKD", username).encode("ascii", "ignore").decode().lower()
    cleaned = re.sub(r"[^a-z0-9\-_]+", "-", ascii_name).strip("-_")
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:max_length].strip("-_")
    return cleaned or "user"


def is_valid_account(account: str) -> bool:
    """True for names Rucio accepts as accounts."""
    return bool(_ACCOUNT.match(account)) and len(account) <= ACCOUNT_MAX
