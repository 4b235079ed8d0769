"""Arbitrary DID metadata for Rucio on SQLite: a Rucio DID metadata plugin.

Rucio stores metadata keys that are not columns of its ``dids`` table through a *custom*
metadata plugin. Its default one, ``rucio.core.did_meta_plugins.json_meta.JSONDidMeta``, needs
PostgreSQL, MySQL or Oracle ≥ 12 and turns itself off on SQLite (``json_implemented()`` is
False there), so an SQLite Rucio refuses every such key. This plugin takes its place there::

    [metadata]
    plugins = vre_sqlite_meta.VreSqliteDidMeta

It runs inside the Rucio server's own environment (gunicorn, daemons), imported by its bare
module name: ``LocalRucio.server_env()`` puts this folder on ``PYTHONPATH``. It needs only
Rucio, SQLAlchemy and the standard library.

Design
------
- **Storage**: table ``vre_did_meta`` in the same SQLite database, one row per DID that has
  custom metadata, the keys as one JSON object in ``meta``. The foreign key to ``dids`` has
  ``ON DELETE CASCADE`` (Rucio turns SQLite's foreign keys on for each connection), so the
  metadata goes when Rucio deletes the DID (undertaker, reaper, ``delete_dids``). The table is
  created by ``create_tables()``, which the bootstrap script calls, or on first use by a
  server whose database is older than the plugin.
- **Name**: ``JSON``, like the plugin it replaces, so ``get_metadata(plugin="JSON")`` and
  ``plugin="ALL"`` (DID columns, then these keys) answer alike on SQLite and PostgreSQL.
- **Keys** (``manages_key``): every non-empty key that is not a column of ``dids``. Rucio asks
  its DID-column plugin first, so DID-column keys never get here; the other columns
  (``account``, ``did_type``, ``is_open``, …) are refused rather than shadowed: with
  ``plugin="ALL"`` a custom ``account`` key would otherwise overwrite the real owner. Keys
  with a ``.`` are refused by Rucio itself (it separates a filter key from its operator).
- **set / set_bulk**: merge into the DID's object (a key set again is replaced), values are
  any JSON value; ``recursive=True`` also sets them on the DID's direct content, like the
  DID-column plugin. The first statement is a write, so concurrent merges on one SQLite
  database are serialised instead of losing keys.
- **delete**: removes one key (``KeyNotFound`` if absent); an emptied row is dropped.
- **list_dids** (Rucio routes a search here when its filter keys are custom keys, with
  ``name`` passed through): filters are parsed by Rucio's own ``FilterEngine`` (same
  typecasting of string values, same operator suffixes ``''``/``ne``/``lt``/``lte``/``gt``/
  ``gte``, same sanity checks), AND within a group, OR between groups. SQL selects the
  scope's DIDs of the requested type (not suppressed) that have every filtered key, with the
  ``name`` filter (wildcards ``*``) as for DID columns, and pre-selects with SQLite's JSON
  functions (string equality on stored strings, numeric comparisons on stored numbers); each
  comparison is then made exactly in Python, with the semantics of Rucio's JSON plugin on
  PostgreSQL:

  * a number compares numerically with stored numbers and numeric strings (``"2024"``);
  * ``True``/``False`` with stored booleans (and the strings ``"true"``/``"false"``);
  * a date (``2024-01-31T00:00:00``) with stored ISO-8601 date strings;
  * a string compares as text with the stored value's text; ``*`` or ``%`` in it is a
    wildcard (``eq``/``ne`` only), case-sensitive like PostgreSQL's ``LIKE``;
  * a key that is absent or ``null`` never matches, not even ``ne``; a value that cannot be
    read as the filter's type does not match (PostgreSQL would fail the whole query).

  ``long=True`` gives ``did_type``, ``bytes`` and ``length`` from ``dids`` (Rucio's JSON
  plugin gives None for them); ``recursive=True`` descends into matching collections like
  Rucio's plugins; ``limit`` is honoured, ``offset`` and ``ignore_case`` are ignored as by
  Rucio's own plugins.
"""

from __future__ import annotations

import json
import logging
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar, cast

from rucio.common import exception
from rucio.core.did_meta_plugins.did_meta_plugin_interface import DidMetaPlugin
from rucio.core.did_meta_plugins.filter_engine import VALID_DATE_FORMATS, FilterEngine
from rucio.db.sqla import models
from rucio.db.sqla import session as rucio_session
from rucio.db.sqla.constants import DIDType
from rucio.db.sqla.types import InternalScopeString
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult, Engine
    from sqlalchemy.orm import Session

LOGGER = logging.getLogger("vre.rucio.sqlite_meta")
PLUGIN_NAME = "JSON"
TABLE_NAME = "vre_did_meta"
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE_NAME} (
    scope VARCHAR(25) NOT NULL,
    name VARCHAR(255) NOT NULL,
    meta TEXT NOT NULL DEFAULT '{{}}' CHECK (json_valid(meta)),
    updated_at DATETIME,
    CONSTRAINT "VRE_DID_META_PK" PRIMARY KEY (scope, name),
    CONSTRAINT "VRE_DID_META_FK" FOREIGN KEY (scope, name)
        REFERENCES dids (scope, name) ON DELETE CASCADE
)"""

_TABLE = Table(
    TABLE_NAME,
    MetaData(),
    Column("scope", InternalScopeString(25), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("meta", Text, nullable=False),
    Column("updated_at", DateTime),
)
_DID_TYPES: dict[str, tuple[Any, ...]] = {
    "all": (DIDType.CONTAINER, DIDType.DATASET, DIDType.FILE),
    "collection": (DIDType.CONTAINER, DIDType.DATASET),
    "container": (DIDType.CONTAINER,),
    "dataset": (DIDType.DATASET,),
    "file": (DIDType.FILE,),
}
_WILDCARDS = ("*", "%")
_ready: set[str] = set()  # engine URLs whose table is known to exist
_CREATED_INFO_KEY = "vre_sqlite_meta_created"

_F = TypeVar("_F", bound=Callable[..., Any])


def _read(function: _F) -> _F:
    return cast("_F", rucio_session.read_session(function))


def _stream(function: _F) -> _F:
    return cast("_F", rucio_session.stream_session(function))


def _transactional(function: _F) -> _F:
    return cast("_F", rucio_session.transactional_session(function))


def create_tables(engine: Engine) -> bool:
    """Create the plugin's table if missing (idempotent); True if it was created now.

    Called by the bootstrap script for every configured metadata plugin module that has it.
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.begin() as connection:
        existed = connection.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": TABLE_NAME},
        ).first()
        connection.execute(text(DDL))
    _ready.add(str(engine.url))
    return existed is None


@cache
def _did_columns() -> frozenset[str]:
    return frozenset(attr.key for attr in sa_inspect(models.DataIdentifier).attrs)


def _dialect(session: Session) -> str:
    return str(session.get_bind().dialect.name)


def _ensure_table(session: Session) -> None:
    """Create the table (database older than the plugin) unless known to exist.

    In the session's own connection: a second one could wait on this session's write lock.
    A table found in ``sqlite_master`` is remembered for the process unless this very session
    created it (its transaction could still roll back).
    """
    url = str(session.get_bind().engine.url)
    if url in _ready or session.info.get(_CREATED_INFO_KEY):
        return
    found = session.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": TABLE_NAME},
    ).first()
    if found is not None:
        _ready.add(url)
        return
    LOGGER.info("creating table %s (database older than the plugin)", TABLE_NAME)
    session.execute(text(DDL))
    session.info[_CREATED_INFO_KEY] = True


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _load(meta: str | None) -> dict[str, Any]:
    if not meta:
        return {}
    value = json.loads(meta)
    return value if isinstance(value, dict) else {}


def _dump(meta: Mapping[str, Any]) -> str:
    return json.dumps(meta, separators=(",", ":"), allow_nan=False)


def _row_where(scope: Any, name: str) -> Any:
    return and_(_TABLE.c.scope == scope, _TABLE.c.name == name)


def _did_exists(session: Session, scope: Any, name: str) -> bool:
    stmt = select(models.DataIdentifier.name).where(
        models.DataIdentifier.scope == scope, models.DataIdentifier.name == name
    )
    return session.execute(stmt).first() is not None


class VreSqliteDidMeta(DidMetaPlugin):  # type: ignore[misc]
    """Custom DID metadata as JSON in table ``vre_did_meta`` (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._plugin_name = PLUGIN_NAME

    # ------------------------------------------------------------------ keys

    def manages_key(self, key: str, *, session: Session | None = None) -> bool:
        """Every non-empty key that is not a ``dids`` column (on an SQLite database)."""
        if not isinstance(key, str) or not key or key in _did_columns():
            return False
        return session is None or _dialect(session) == "sqlite"

    def _check_keys(self, keys: Iterable[str], session: Session) -> None:
        refused = [key for key in keys if not self.manages_key(key, session=session)]
        if refused:
            raise exception.InvalidMetadata(
                f"the {PLUGIN_NAME} metadata plugin does not manage the key(s) {refused}"
            )

    # ------------------------------------------------------------------ read

    @_read
    def get_metadata(self, scope: Any, name: str, *, session: Session) -> dict[str, Any]:
        """The DID's custom keys (``{}`` if none); DataIdentifierNotFound for no DID."""
        _ensure_table(session)
        did = models.DataIdentifier
        stmt = (
            select(did.name, _TABLE.c.meta)
            .select_from(did)
            .outerjoin(_TABLE, and_(_TABLE.c.scope == did.scope, _TABLE.c.name == did.name))
            .where(did.scope == scope, did.name == name)
        )
        row = session.execute(stmt).first()
        if row is None:
            raise exception.DataIdentifierNotFound(f"Data identifier '{scope}:{name}' not found")
        return _load(row.meta)

    # ------------------------------------------------------------------ write

    @_transactional
    def set_metadata(
        self,
        scope: Any,
        name: str,
        key: str,
        value: Any,
        recursive: bool = False,
        *,
        session: Session,
    ) -> None:
        """Set one key (see ``set_metadata_bulk``)."""
        self.set_metadata_bulk(
            scope=scope, name=name, metadata={key: value}, recursive=recursive, session=session
        )

    @_transactional
    def set_metadata_bulk(
        self,
        scope: Any,
        name: str,
        metadata: Mapping[str, Any] | None = None,
        recursive: bool = False,
        *,
        session: Session,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Merge ``metadata`` into the DID's keys (and its direct content's if recursive).

        Rucio's dispatcher passes ``metadata=``; the abstract interface names it ``meta``.
        """
        values = dict(metadata if metadata is not None else meta or {})
        if not values:
            return
        self._check_keys(values, session)
        for key, value in values.items():
            try:
                _dump({key: value})
            except (TypeError, ValueError) as error:
                raise exception.InvalidValueForKey(
                    f"the value of {key!r} is not a JSON value: {error}"
                ) from error
        _ensure_table(session)
        if not _did_exists(session, scope, name):
            raise exception.DataIdentifierNotFound(f"Data identifier '{scope}:{name}' not found")
        targets: list[tuple[Any, str]] = [(scope, name)]
        if recursive:
            association = models.DataIdentifierAssociation
            content = select(association.child_scope, association.child_name).where(
                association.scope == scope, association.name == name
            )
            targets.extend((row.child_scope, row.child_name) for row in session.execute(content))
        for target_scope, target_name in targets:
            self._merge(session, target_scope, target_name, values)

    @staticmethod
    def _merge(session: Session, scope: Any, name: str, values: Mapping[str, Any]) -> None:
        now = _now()
        # A write first: it takes SQLite's write lock before the row is read.
        session.execute(
            sqlite_insert(_TABLE)
            .values(scope=scope, name=name, meta="{}", updated_at=now)
            .on_conflict_do_update(
                index_elements=[_TABLE.c.scope, _TABLE.c.name], set_={"updated_at": now}
            )
        )
        current = session.execute(select(_TABLE.c.meta).where(_row_where(scope, name))).scalar()
        merged = _load(current)
        merged.update(values)
        session.execute(update(_TABLE).where(_row_where(scope, name)).values(meta=_dump(merged)))

    @_transactional
    def delete_metadata(self, scope: Any, name: str, key: str, *, session: Session) -> None:
        """Remove ``key`` from the DID's keys; KeyNotFound if it has no such key."""
        _ensure_table(session)
        touched = cast(
            "CursorResult[Any]",
            session.execute(
                update(_TABLE).where(_row_where(scope, name)).values(updated_at=_now())
            ),
        ).rowcount
        if not touched and not _did_exists(session, scope, name):
            raise exception.DataIdentifierNotFound(f"Data identifier '{scope}:{name}' not found")
        current = _load(
            session.execute(select(_TABLE.c.meta).where(_row_where(scope, name))).scalar()
        )
        if key not in current:
            raise exception.KeyNotFound(f"no metadata key {key!r} on '{scope}:{name}'")
        del current[key]
        if current:
            session.execute(
                update(_TABLE).where(_row_where(scope, name)).values(meta=_dump(current))
            )
        else:
            session.execute(delete(_TABLE).where(_row_where(scope, name)))

    # ------------------------------------------------------------------ search

    @_stream
    def list_dids(  # noqa: PLR0917 - Rucio's interface (its dispatcher passes keywords)
        self,
        scope: Any,
        filters: Mapping[str, Any] | list[Mapping[str, Any]],
        did_type: str = "collection",
        ignore_case: bool = False,
        limit: int | None = None,
        offset: int | None = None,
        long: bool = False,
        recursive: bool = False,
        ignore_dids: Iterable[str] | None = None,
        *,
        session: Session,
    ) -> Iterator[str | dict[str, Any]]:
        """DIDs of ``scope`` whose custom keys match ``filters`` (see the module docstring)."""
        groups = [filters] if isinstance(filters, Mapping) else list(filters or [{}])
        seen = ignore_dids if isinstance(ignore_dids, set) else set(ignore_dids or ())
        _ensure_table(session)
        results = self._search(
            scope, groups, did_type=did_type, long=long, recursive=recursive, seen=seen,
            session=session,
        )  # fmt: skip
        yield from islice(results, limit or None)

    def _search(
        self,
        scope: Any,
        groups: Sequence[Mapping[str, Any]],
        *,
        did_type: str,
        long: bool,
        recursive: bool,
        seen: set[str],
        session: Session,
    ) -> Iterator[str | dict[str, Any]]:
        for raw_group in groups:
            group = dict(raw_group)
            group.pop("did_type", None)
            group_type = str(group.pop("type", did_type) or "collection").lower()
            if group_type not in _DID_TYPES:
                raise exception.UnsupportedOperation(
                    f"{group_type} is not a valid type. Valid types are {list(_DID_TYPES)}"
                )
            rows = self._group_rows(scope, group, _DID_TYPES[group_type], session)
            if recursive:
                from rucio.core.did import list_content

                for row in rows:
                    if row.did_type not in (DIDType.CONTAINER, DIDType.DATASET):
                        continue
                    children = list(list_content(scope=row.scope, name=row.name, session=session))
                    for child in children:
                        child_groups = [_with_name(g, child["name"]) for g in groups]
                        yield from self._search(
                            child["scope"], child_groups, did_type=did_type, long=long,
                            recursive=True, seen=seen, session=session,
                        )  # fmt: skip
            for row in rows:
                full = f"{row.scope}:{row.name}"
                if full in seen:  # OR groups may overlap
                    continue
                seen.add(full)
                if long:
                    yield {
                        "scope": row.scope,
                        "name": row.name,
                        "did_type": row.did_type.name,
                        "bytes": row.bytes,
                        "length": row.length,
                    }
                else:
                    yield row.name

    @staticmethod
    def _group_rows(
        scope: Any, group: dict[str, Any], did_types: tuple[Any, ...], session: Session
    ) -> list[Any]:
        """Rows (scope, name, did_type, bytes, length) of one AND group."""
        # Rucio's own parser: typecasting of string values, operators, sanity checks.
        conditions = FilterEngine([dict(group)], strict_coerce=False).filters[0] if group else []
        did = models.DataIdentifier
        clauses: list[Any] = [
            did.scope == scope,
            did.did_type.in_(did_types),
            or_(did.suppressed != true(), did.suppressed.is_(None)),
        ]
        checks: list[tuple[str, Callable[[Any, Any], Any], Any]] = []
        for key, oper, value in conditions:
            if oper is None:
                raise exception.DIDFilterSyntaxError(f"unknown operator in the filter on {key}")
            if isinstance(value, str) and value in _WILDCARDS:
                continue  # "anything", as in Rucio's filter engine
            if key == "name":
                raw = group.get("name" if oper is operator.eq else "name.ne", value)
                clauses.append(_name_clause(did.name, oper, str(raw)))
                continue
            if '"' not in key and "\\" not in key:
                clauses.extend(_preselection(key, oper, value))
            checks.append((key, oper, value))
        stmt = (
            select(did.scope, did.name, did.did_type, did.bytes, did.length, _TABLE.c.meta)
            .join(_TABLE, and_(_TABLE.c.scope == did.scope, _TABLE.c.name == did.name))
            .where(*clauses)
        )
        rows = []
        for row in session.execute(stmt):
            meta = _load(row.meta)
            if all(key in meta and _matches(meta[key], oper, value) for key, oper, value in checks):
                rows.append(row)
        return rows


def _preselection(key: str, oper: Callable[[Any, Any], Any], value: Any) -> list[Any]:
    """SQL clauses keeping every row the Python comparison could accept (and few others).

    The key must be there; a string equality or a numeric comparison is also made by SQLite's
    JSON functions on stored strings (resp. numbers), other stored types go on to Python.
    """
    path = f'$."{key}"'
    kind = func.json_type(_TABLE.c.meta, path)
    stored = func.json_extract(_TABLE.c.meta, path)
    clauses: list[Any] = [kind.is_not(None)]
    if isinstance(value, bool):
        return clauses
    if isinstance(value, str) and oper is operator.eq and not _has_wildcard(value):
        clauses.append(or_(kind != "text", stored == value))
    elif isinstance(value, int | float):
        clauses.append(
            or_(kind == "text", and_(kind.in_(("integer", "real")), oper(stored, value)))
        )
    return clauses


def _has_wildcard(value: str) -> bool:
    return any(char in value for char in _WILDCARDS)


def _with_name(group: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``group`` searching for exactly ``name`` (recursive search into a collection)."""
    copy = {k: v for k, v in group.items() if k.split(".")[0] != "name"}
    copy["name"] = name
    return copy


def _name_clause(column: Any, oper: Callable[[Any, Any], Any], value: str) -> Any:
    """The ``name`` filter as the DID-column plugin applies it (``*`` is a wildcard)."""
    if _has_wildcard(value):
        pattern = value.replace("*", "%").replace("_", "\\_")
        if oper is operator.eq:
            return column.like(pattern, escape="\\")
        return column.notlike(pattern, escape="\\")
    return oper(column, value)


# ---------------------------------------------------------------------------------------------
# Value comparison (the semantics of Rucio's JSON plugin on PostgreSQL)


def _matches(stored: Any, oper: Callable[[Any, Any], Any], value: Any) -> bool:
    if stored is None:
        return False
    if isinstance(value, bool):  # before int: bool is an int
        flag = _as_bool(stored)
        return flag is not None and bool(oper(flag, value))
    if isinstance(value, int | float):
        number = _as_number(stored)
        return number is not None and bool(oper(number, float(value)))
    if isinstance(value, datetime):
        moment = _as_datetime(stored)
        return moment is not None and bool(oper(moment, _naive_utc(value)))
    stored_text = _as_text(stored)
    if isinstance(value, str) and _has_wildcard(value):
        found = _wildcard_pattern(value).fullmatch(stored_text) is not None
        return found if oper is operator.eq else not found
    return bool(oper(stored_text, str(value)))


def _as_bool(stored: Any) -> bool | None:
    if isinstance(stored, bool):
        return stored
    if isinstance(stored, str) and stored.strip().lower() in ("true", "false"):
        return stored.strip().lower() == "true"
    return None


def _as_number(stored: Any) -> float | None:
    if isinstance(stored, bool):
        return None
    if isinstance(stored, int | float):
        return float(stored)
    if isinstance(stored, str):
        try:
            return float(stored.strip())
        except ValueError:
            return None
    return None


def _as_datetime(stored: Any) -> datetime | None:
    if not isinstance(stored, str):
        return None
    candidate = stored.strip()
    for fmt in VALID_DATE_FORMATS:
        try:
            return datetime.strptime(candidate, fmt)  # Rucio's dates: naive UTC
        except ValueError:
            continue
    try:
        return _naive_utc(datetime.fromisoformat(candidate))
    except ValueError:
        return None


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _as_text(stored: Any) -> str:
    if isinstance(stored, str):
        return stored
    if isinstance(stored, bool):
        return "true" if stored else "false"
    return json.dumps(stored)


@cache
def _wildcard_pattern(value: str) -> re.Pattern[str]:
    parts = re.split(r"[*%]", value)
    return re.compile(".*".join(re.escape(part) for part in parts), re.DOTALL)
