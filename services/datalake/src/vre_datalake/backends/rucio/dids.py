"""DIDs: metadata, searches, collections and their content."""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from vre_common.errors import InvalidInputError
from vre_datalake.backends.base import Actor, MetadataFilter
from vre_datalake.backends.rucio.common import RucioCalls, did_path, did_type, parse_time
from vre_datalake.models import CollectionType, Did, DidRef

# Columns of Rucio's DID table that describe the DID itself rather than user metadata.
_STRUCTURAL = frozenset(
    {
        "scope", "name", "account", "did_type", "type", "bytes", "length", "md5", "adler32",
        "is_open", "open", "monotonic", "hidden", "obsolete", "complete", "is_new",
        "availability", "suppressed", "expired_at", "purge_replicas", "deleted_at",
        "created_at", "updated_at", "accessed_at", "closed_at", "eol_at", "is_archive",
        "constituent", "access_cnt", "transient",
    }
)  # fmt: skip
# Keys Rucio's DID_COLUMN metadata plugin manages (DID table columns it lets users set, as in
# rucio.core.did_meta_plugins.did_column_meta.manages_key); other keys need a custom-metadata
# plugin: Rucio's JSON plugin (on PostgreSQL).
DID_COLUMN_KEYS = frozenset(
    {
        "project", "datatype", "run_number", "stream_name", "prod_step", "version",
        "campaign", "task_id", "panda_id", "lumiblocknr", "provenance", "phys_group",
        "events", "guid", "transient", "hidden", "eol_at", "lifetime", "purge_replicas",
        "accessed_at", "closed_at", "is_archive", "constituent", "access_cnt", "expired_at",
        "is_new", "bytes", "length", "md5", "adler32", "deleted_at", "name",
    }
)  # fmt: skip
# Keys Rucio's API never sets as metadata (rucio.common.constants.RESERVED_KEYS: properties
# of the DID it keeps for itself), whatever the plugins; refused before an upload stores bytes.
DID_PROPERTY_KEYS = frozenset(
    {
        "scope", "name", "account", "did_type", "is_open", "monotonic", "obsolete", "complete",
        "availability", "suppressed", "bytes", "length", "md5", "adler32",
        "rule_evaluation_action", "rule_evaluation_required", "expired_at", "deleted_at",
        "created_at", "updated_at",
    }
)  # fmt: skip


def _did_from_meta(data: dict[str, Any]) -> Did:
    metadata = {
        k: v
        for k, v in data.items()
        if k not in _STRUCTURAL and v is not None and not isinstance(v, dict | list)
    }
    return Did(
        scope=data["scope"],
        name=data["name"],
        type=did_type(data.get("did_type") or data.get("type")),
        bytes=data.get("bytes"),
        length=data.get("length"),
        adler32=data.get("adler32"),
        md5=data.get("md5"),
        account=data.get("account"),
        open=data.get("is_open", data.get("open")),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
        metadata=metadata,
    )


def _did_from_listing(scope: str, data: Any) -> Did:
    if isinstance(data, str):
        return Did(scope=scope, name=data, type="file")
    return Did(
        scope=data.get("scope", scope),
        name=data["name"],
        type=did_type(data.get("did_type") or data.get("type")),
        bytes=data.get("bytes"),
        length=data.get("length"),
        adler32=data.get("adler32"),
        md5=data.get("md5"),
    )


def _filter_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return value


class DidCalls(RucioCalls):
    """``/dids``."""

    _meta_plugin: str

    async def get_did(self, actor: Actor, scope: str, name: str) -> Did:
        """``GET /dids/{scope}/{name}/meta``: the DID columns, and custom keys too with the
        configured ``plugin=ALL`` (Rucio's JSON plugin, on PostgreSQL)."""
        data = await self._rest.json(
            "GET",
            did_path(scope, name) + "/meta",
            auth=self._user(actor),
            operation="get_metadata",
            params={"plugin": self._meta_plugin},
        )
        return _did_from_meta(data)

    async def stat_did(self, actor: Actor, scope: str, name: str) -> Did:
        """``GET /dids/{scope}/{name}``: type, size and checksums, no metadata (cheaper)."""
        data = await self._rest.json(
            "GET", did_path(scope, name), auth=self._user(actor), operation="get_did"
        )
        return _did_from_listing(scope, data)

    async def check_metadata_keys(self, actor: Actor, keys: Sequence[str]) -> None:
        """422 before anything is written if this Rucio cannot store some of ``keys``."""
        reserved = sorted(k for k in keys if k in DID_PROPERTY_KEYS)
        if reserved:
            raise InvalidInputError(
                f"{', '.join(reserved)}: properties Rucio keeps for the DID, not metadata",
                errors=[
                    {"loc": ["metadata", k], "msg": "a DID property", "type": "value_error"}
                    for k in reserved
                ],
            )
        custom = sorted(k for k in keys if k not in DID_COLUMN_KEYS)
        if not custom:
            return
        if self._meta_plugin == "DID_COLUMN":
            raise InvalidInputError(
                f"this Rucio stores only its DID-column metadata keys; {', '.join(custom)} "
                "would need its custom-metadata plugin (Rucio's JSON plugin, on PostgreSQL)",
                errors=[
                    {"loc": ["metadata", k], "msg": "not a DID-column key", "type": "value_error"}
                    for k in custom
                ],
            )

    async def iter_dids(
        self,
        actor: Actor,
        scope: str,
        *,
        name: str,
        did_type: str,
        filters: Sequence[MetadataFilter],
        limit: int | None,
    ) -> AsyncIterator[Did]:
        """``GET /dids/{scope}/dids/search`` streamed.

        A name Rucio would read as something else (see :func:`rucio_name_filter`) is sent as a
        wider pattern, and the listing is narrowed to the name asked for here.
        """
        sent, exact = rucio_name_filter(name)
        group: dict[str, Any] = {"name": sent}
        for f in filters:
            key = f.key if f.op == "eq" else f"{f.key}.{f.op}"
            group[key] = _filter_value(f.value)
        params: dict[str, Any] = {
            "type": did_type,
            "long": "True",
            "filters": repr([group]),
        }
        if limit is not None and exact is None:
            params["limit"] = limit
        listing = self._rest.stream(
            "GET",
            f"/dids/{quote(scope, safe='')}/dids/search",
            auth=self._user(actor),
            operation="list_dids",
            params=params,
            field="meta",
        )
        found = 0
        async with contextlib.aclosing(listing):
            async for item in listing:
                did = _did_from_listing(scope, item)
                if exact is not None and not exact.fullmatch(did.name):
                    continue
                yield did
                found += 1
                if limit is not None and found >= limit:
                    return

    async def add_collection(
        self,
        actor: Actor,
        scope: str,
        name: str,
        did_type: CollectionType,
        *,
        metadata: dict[str, Any],
        lifetime: int | None,
    ) -> None:
        """``POST /dids/{scope}/{name}``."""
        body: dict[str, Any] = {"type": did_type.upper()}
        if metadata:
            body["meta"] = metadata
        if lifetime:
            body["lifetime"] = lifetime
        await self._rest.request(
            "POST",
            did_path(scope, name),
            auth=self._user(actor),
            operation=f"add_{did_type}",
            json_body=body,
            field="metadata",
        )

    async def attach(self, actor: Actor, scope: str, name: str, dids: Sequence[DidRef]) -> None:
        """``POST /dids/{scope}/{name}/dids``."""
        await self._rest.request(
            "POST",
            did_path(scope, name) + "/dids",
            auth=self._user(actor),
            operation="attach_dids",
            json_body={"dids": [{"scope": d.scope, "name": d.name} for d in dids]},
            field="dids",
        )

    async def detach(self, actor: Actor, scope: str, name: str, dids: Sequence[DidRef]) -> None:
        """``DELETE /dids/{scope}/{name}/dids``."""
        await self._rest.request(
            "DELETE",
            did_path(scope, name) + "/dids",
            auth=self._user(actor),
            operation="detach_dids",
            json_body={"dids": [{"scope": d.scope, "name": d.name} for d in dids]},
            field="dids",
        )

    async def set_metadata(
        self, actor: Actor, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """``POST /dids/{scope}/{name}/meta``."""
        await self._rest.request(
            "POST",
            did_path(scope, name) + "/meta",
            auth=self._user(actor),
            operation="set_metadata",
            json_body={"meta": metadata},
            field="metadata",
        )

    async def set_metadata_bulk(
        self, actor: Actor, items: Sequence[tuple[DidRef, dict[str, Any]]]
    ) -> None:
        """``POST /dids/bulkdidsmeta``."""
        await self._rest.request(
            "POST",
            "/dids/bulkdidsmeta",
            auth=self._user(actor),
            operation="set_dids_metadata_bulk",
            json_body={"dids": [{"scope": d.scope, "name": d.name, "meta": m} for d, m in items]},
            field="items",
        )

    async def iter_content(self, actor: Actor, scope: str, name: str) -> AsyncIterator[Did]:
        """``GET /dids/{scope}/{name}/dids`` streamed."""
        async for item in self._rest.stream(
            "GET", did_path(scope, name) + "/dids", auth=self._user(actor), operation="list_content"
        ):
            yield _did_from_listing(scope, item)


_BOOLEAN_WORDS = re.compile(r"t(?=rue)|T(?=RUE)|f(?=alse)|F(?=ALSE)")
_NOT_LITERAL = "+-*/"  # Rucio does not evaluate a value holding any of these as a literal


def _has_operator(value: str) -> bool:
    return any(op in value for op in _NOT_LITERAL)


def _rucio_reads_otherwise(value: str) -> bool:
    """Would Rucio's filter engine change this string (``FilterEngine._try_typecast_string``)?

    It rewrites true/TRUE/false/FALSE anywhere in it to True/False, and a value without
    ``+-*/`` that is a Python literal becomes that literal: ``0``, ``1.5``, ``1_0``, ``1e5``,
    ``0x1f``, ``True``, ``None`` — compared with the name column, PostgreSQL refuses the query
    (a 502 'DatabaseException'); a rewritten word silently matches nothing.
    """
    if _BOOLEAN_WORDS.search(value):
        return True
    if _has_operator(value):
        return False
    try:
        return not isinstance(ast.literal_eval(value), str)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def rucio_name_filter(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """The name filter to send to Rucio for ``pattern`` (``*`` wildcards), and — when that is
    a wider pattern — the expression the listed names must match exactly."""
    if not _rucio_reads_otherwise(pattern):
        return pattern, None
    sent = _BOOLEAN_WORDS.sub("*", pattern)
    if not _has_operator(sent):
        sent += "*"
    exact = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
    return sent, exact
