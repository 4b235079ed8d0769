"""Strict, bounded field types for request bodies: what the OpenAPI document says is what the
server accepts, and nothing is coerced (``false`` is not 0, ``1.5`` or ``"3"`` not an integer,
``1`` or ``"yes"`` not a boolean).

Request models use these (and :class:`RequestModel`); FastAPI validates bodies in pydantic's
Python mode after parsing JSON, where the lax defaults would turn ``{"lifetime": false}`` into
a rule that expires now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

INT64_MAX = 2**63 - 1
"""The largest integer a 64-bit database column and most clients hold."""

StrictInt = Annotated[int, Strict(), Field(ge=-INT64_MAX, le=INT64_MAX)]
"""An integer, not a boolean, a fraction or a string of digits; within 64 bits."""

NonNegativeInt = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
"""A strict integer ≥ 0."""

PositiveInt = Annotated[int, Strict(), Field(ge=1, le=INT64_MAX)]
"""A strict integer ≥ 1."""

StrictFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite number (integers are numbers too), not a boolean or a string."""

StrictBool = Annotated[bool, Strict()]
"""``true`` or ``false`` only."""

LifetimeSeconds = Annotated[int, Strict(), Field(ge=1, le=100 * 365 * 86400)]
"""A lifetime in seconds: at least one second, at most a hundred years."""


def bounded_int(ge: int, le: int) -> object:
    """``Annotated[int, bounded_int(1, 1000)]``: a strict integer within [ge, le]."""
    return Field(strict=True, ge=ge, le=le)


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused (a misspelt field is an error, not
    silently ignored). Use the strict types of this module for numbers and booleans."""

    model_config = ConfigDict(extra="forbid")


def exactly_one_of(
    *fields: str, examples: list[dict[str, Any]] | None = None
) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` stating that exactly one of ``fields`` is given (``oneOf`` of
    ``required``), each as its own type (not ``null``). The model enforces the same with
    :func:`check_exactly_one_of` in an ``after`` validator."""

    def extra(schema: dict[str, Any]) -> None:
        properties = schema.get("properties", {})
        for name in fields:
            prop = properties.get(name, {})
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if len(options) == 1:
                prop.update(options[0])
            elif options:
                prop["anyOf"] = options
            if prop.get("default", "") is None:
                prop.pop("default")
        schema["oneOf"] = [{"required": [name]} for name in fields]
        if examples:
            schema["examples"] = examples

    return extra


def check_exactly_one_of(model: BaseModel, *fields: str) -> None:
    """Raise ValueError unless exactly one of ``fields`` was given, and not as null."""
    given = [name for name in fields if getattr(model, name) is not None]
    nulls = [n for n in fields if n in model.model_fields_set and getattr(model, n) is None]
    if nulls:
        raise ValueError(f"{', '.join(nulls)}: leave the field out instead of sending null")
    if len(given) != 1:
        raise ValueError(f"give exactly one of {' and '.join(fields)} ({len(given)} given)")


# The naming rules of the Data Lake (Rucio's, stricter; vre_datalake.names checks them with a
# message per rule), as ECMA/Python regular expressions for the OpenAPI document, so that a
# client knows before sending which names the server accepts. Look-arounds keep them exact;
# pydantic's regex engine has none, so the check stays in code and the schema states it.
SCOPE_PATTERN = r"^(?!\.{1,2}$)[a-zA-Z0-9_.\-]{1,25}$"
_NAME_BODY = (
    r"(?!.*/(?:content|attach|detach|metadata|replicas|archive|rules|parents)$)"
    r"[A-Za-z0-9][A-Za-z0-9._\-]{0,249}(?:/[A-Za-z0-9][A-Za-z0-9._\-]*)*"
)
DID_NAME_PATTERN = rf"^(?=.{{1,250}}$){_NAME_BODY}$"
DID_PATTERN = rf"^(?!\.{{1,2}}:)[a-zA-Z0-9_.\-]{{1,25}}:(?=.{{1,250}}$){_NAME_BODY}$"
RSE_PATTERN = r"^(?=.{1,255}$)[A-Z0-9]+(?:[_\-][A-Z0-9]+)*$"


def stated(pattern: str, **extra: Any) -> dict[str, Any]:
    """``json_schema_extra`` stating a pattern the code enforces (see the patterns above)."""
    return {"pattern": pattern, **extra}


OFFSET_MAX = 2**31 - 1
"""The largest offset, page number or row id a list accepts: it fits every database's integer
(PostgreSQL's bigint overflowed at ?offset=10^23, a 500) and no list is longer."""

_INVISIBLE = r"\s\x00-\x1f\x7f-\x9f\ufeff"
VISIBLE = rf"[^{_INVISIBLE}]"
"""One character that is neither white space nor a control character — the same set in
JSON Schema's ECMA-262 patterns, Python's ``re`` and pydantic's Rust regex (a bare ``\\S``
is not: ECMA-262 counts U+0085 as visible and U+FEFF as space, Python counts U+001C–U+001F
as space)."""

# Characters that NFKC-normalise to one of /?#@: — a host holding one is no host (urllib's
# urlsplit refuses it, browsers read another URL); tests/test_patterns.py recomputes the list.
NFKC_DELIMITERS = (
    r"\u2047\u2048\u2049\u2100\u2101\u2105\u2106\u2a74\ufe13\ufe16\ufe55\ufe56\ufe5f\ufe6b"
    r"\uff03\uff0f\uff1a\uff1f\uff20"
)
HOST_CHAR = rf"[^{_INVISIBLE}/?#@:\[\]\\{NFKC_DELIMITERS}]"
"""One character of a URL's host name (no user, no brackets: no IPv6 literal)."""
PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
WEB_URL_PATTERN = rf"^https?://{HOST_CHAR}+(?::{PORT})?(?:[/?#]{VISIBLE}*)?$"
"""An http(s) URL a browser and urllib both read as one: a host, then a path, query or
fragment of visible characters."""

DID_NAME_FILTER_PATTERN = r"^(?!(?:.*/)?\.\.(?:/.*)?$)[A-Za-z0-9*][/A-Za-z0-9.\-_*]{0,249}$"
"""A DID name filter with ``*`` wildcards (no ``..`` segment)."""
META_CONDITION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}(?:>=|<=|!=|=|>|<)[\s\S]*$"
"""A metadata condition of a DID search, ``key<op>value``."""
META_ASSIGNMENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}=[\s\S]*$"
"""A metadata assignment of an upload, ``key=value``."""
