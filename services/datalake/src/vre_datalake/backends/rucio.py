"""``RucioDatalakeBackend``: the catalogue port over Rucio's REST API (async httpx, no SDK).

Who the calls act as (``identity_mode``):

- ``service``: calls run as the user's account with tokens the service obtains through its
  own userpass identity (mapped to every account it creates); operations Rucio's generic
  policy keeps for administrators — registering replicas of a checksummed upload, changing or
  deleting a rule the service has checked belongs to the caller, creating accounts and
  scopes — run with the service's own account. Writes in a project scope run as the
  project's GROUP account (the owner of the scope, so Rucio's generic policy allows adding
  DIDs, attaching and setting metadata there, and the upload's rule counts against the
  project's limit) — after the shared project policy allowed the caller.
- ``token``: every call carries the caller's bearer token; Rucio decides (project scopes
  then need a Rucio policy that lets members write there: the generic one does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from vre_common.auth import Principal
from vre_common.errors import BadGatewayError, InvalidInputError, NotFoundError, VreError
from vre_datalake.backends.base import Actor, MetadataFilter
from vre_datalake.backends.rucio_accounts import RucioAccounts
from vre_datalake.backends.rucio_rest import BearerAuth, RucioAuth, RucioRest
from vre_datalake.config import AccountSettings, RucioSettings
from vre_datalake.errors import QuotaError, RseNotFoundError, ScopeExistsError
from vre_datalake.models import (
    CollectionType,
    Did,
    DidRef,
    FileReplicas,
    Lock,
    Replica,
    Rse,
    RseSpace,
    RseUsage,
    Rule,
    RuleCreate,
    Scope,
)

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
_SCOPES_TTL = 30.0
# Keys Rucio's DID_COLUMN metadata plugin manages (DID table columns it lets users set, as in
# rucio.core.did_meta_plugins.did_column_meta.manages_key); other keys need a custom-metadata
# plugin: Rucio's JSON plugin (PostgreSQL) or, on the embedded SQLite Rucio, vre_sqlite_meta.
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


def parse_time(value: Any) -> datetime | None:
    """Rucio writes RFC 1123 dates in some answers and ISO 8601 in others."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _did_type(value: Any) -> str:
    text = str(value or "file").lower()
    return text if text in ("file", "dataset", "container") else "file"


def _path(scope: str, name: str) -> str:
    return f"/dids/{quote(scope, safe='')}/{quote(name, safe='/')}"


def _did_from_meta(data: dict[str, Any]) -> Did:
    metadata = {
        k: v
        for k, v in data.items()
        if k not in _STRUCTURAL and v is not None and not isinstance(v, dict | list)
    }
    return Did(
        scope=data["scope"],
        name=data["name"],
        type=_did_type(data.get("did_type") or data.get("type")),
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
        type=_did_type(data.get("did_type") or data.get("type")),
        bytes=data.get("bytes"),
        length=data.get("length"),
        adler32=data.get("adler32"),
        md5=data.get("md5"),
    )


def _rule(data: dict[str, Any]) -> Rule:
    return Rule(
        id=data["id"],
        account=data["account"],
        scope=data["scope"],
        name=data["name"],
        did_type=_did_type(data.get("did_type")),
        rse_expression=data["rse_expression"],
        copies=int(data.get("copies") or 1),
        state=str(data.get("state")),
        error=data.get("error"),
        activity=data.get("activity"),
        comment=data.get("comments"),
        grouping=data.get("grouping"),
        locks_ok=int(data.get("locks_ok_cnt") or 0),
        locks_replicating=int(data.get("locks_replicating_cnt") or 0),
        locks_stuck=int(data.get("locks_stuck_cnt") or 0),
        expires_at=parse_time(data.get("expires_at")),
        created_at=parse_time(data.get("created_at")),
        updated_at=parse_time(data.get("updated_at")),
    )


def _filter_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return value


def local_path(url: str) -> str | None:
    """The local path of a ``file://`` PFN, else None."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return unquote(parts.path)
    return None


class RucioDatalakeBackend:
    """The Data Lake catalogue on Rucio (see the module docstring for identities)."""

    def __init__(
        self,
        rest: RucioRest,
        *,
        settings: RucioSettings,
        accounts: AccountSettings,
        reserved_account_prefixes: Sequence[str] = (),
    ) -> None:
        self._rest = rest
        self._settings = settings
        self._token_mode = settings.identity_mode == "token"
        self._service = rest.account_auth(settings.service_account)
        self._accounts = RucioAccounts(
            rest, accounts, admin=self._service, reserved_prefixes=reserved_account_prefixes
        )
        self._scope_prefix = accounts.scope_prefix
        self._whoami: dict[str, str] = {}
        self._scopes: tuple[float, set[str]] = (0.0, set())
        self._meta_plugin: str | None = (
            None if settings.metadata_plugin == "auto" else settings.metadata_plugin
        )

    async def aclose(self) -> None:
        """Close the HTTP pool."""
        await self._rest.aclose()

    # ------------------------------------------------------------------ identity

    def _user(self, actor: Actor) -> RucioAuth:
        if actor.service:
            return self._service
        if self._token_mode:
            if not actor.bearer:
                raise BadGatewayError("token mode needs the caller's bearer token")
            return BearerAuth(actor.bearer)
        return self._rest.account_auth(actor.account)

    def service_actor(self) -> Actor:
        """The service's own account (reads for crash recovery; never a user's request)."""
        account = self._settings.service_account
        return Actor(account=account, scope="", user_key=f"service:{account}", service=True)

    def _privileged(self, actor: Actor) -> RucioAuth:
        """Auth for calls the generic policy keeps for admins (service mode: the service)."""
        return self._user(actor) if self._token_mode else self._service

    async def bind(self, principal: Principal, bearer: str | None) -> Actor:
        """The caller's account: ``whoami`` in token mode, mapping/creation in service mode."""
        if self._token_mode:
            if not bearer:
                raise BadGatewayError("token mode needs the caller's bearer token")
            account = self._whoami.get(principal.key)
            if account is None:
                response = await self._rest.request(
                    "GET",
                    "/accounts/whoami",
                    auth=BearerAuth(bearer),
                    operation="whoami",
                    ok=(200, 303),
                )
                if response.status_code == 303:
                    account = unquote(response.headers["location"].rstrip("/").split("/")[-1])
                else:
                    account = str(response.json()["account"])
                self._whoami[principal.key] = account
            return Actor(
                account=account,
                scope=self._accounts.scope_of(account),
                user_key=principal.key,
                bearer=bearer,
                principal=principal,
            )
        account = await self._accounts.account_for(principal)
        return Actor(
            account=account,
            scope=self._accounts.scope_of(account),
            user_key=principal.key,
            bearer=bearer,
            principal=principal,
        )

    async def ping(self) -> None:
        """``GET /ping`` (no auth)."""
        await self._rest.request("GET", "/ping", auth=None, operation="ping")

    # ------------------------------------------------------------------ RSEs and scopes

    async def _rse_details(self, actor: Actor, name: str) -> Rse:
        auth = self._user(actor)
        info, attrs, usage = await asyncio.gather(
            self._rest.json("GET", f"/rses/{quote(name)}", auth=auth, operation="get_rse"),
            self._rest.json("GET", f"/rses/{quote(name)}/attr/", auth=auth, operation="rse_attr"),
            self._collect(
                self._rest.stream(
                    "GET", f"/rses/{quote(name)}/usage", auth=auth, operation="rse_usage"
                )
            ),
        )
        attributes = {k: v for k, v in (attrs or {}).items() if k != name}
        return Rse(
            name=info.get("rse", name),
            rse_type=info.get("rse_type"),
            deterministic=info.get("deterministic"),
            volatile=info.get("volatile"),
            availability_read=info.get("availability_read"),
            availability_write=info.get("availability_write"),
            availability_delete=info.get("availability_delete"),
            schemes=sorted({p["scheme"] for p in info.get("protocols", [])}),
            attributes=attributes,
            space=[
                RseSpace(
                    source=str(u.get("source")),
                    used_bytes=u.get("used"),
                    free_bytes=u.get("free"),
                    total_bytes=u.get("total"),
                    files=u.get("files"),
                )
                for u in usage
            ],
        )

    @staticmethod
    async def _collect(stream: AsyncIterator[Any]) -> list[Any]:
        return [item async for item in stream]

    async def list_rses(self, actor: Actor, expression: str | None = None) -> list[Rse]:
        """Every RSE (matching ``expression``) with details."""
        names = await self.rse_names(actor, expression or "*")
        return list(await asyncio.gather(*(self._rse_details(actor, n) for n in names)))

    async def get_rse(self, actor: Actor, rse: str) -> Rse:
        """One RSE."""
        return await self._rse_details(actor, rse)

    async def rse_names(self, actor: Actor, expression: str) -> list[str]:
        """Names of RSEs matching ``expression`` (sorted)."""
        try:
            items = await self._collect(
                self._rest.stream(
                    "GET",
                    "/rses/",
                    auth=self._user(actor),
                    operation="list_rses",
                    params={"expression": expression} if expression != "*" else None,
                    field="rse_expression",
                )
            )
        except RseNotFoundError:
            return []
        except VreError as exc:
            if exc.status == 404:  # InvalidRSEExpression with no match answers 404 too
                return []
            raise
        return sorted(str(item["rse"]) for item in items)

    async def list_scopes(self, actor: Actor) -> list[Scope]:
        """Every scope, with the account a ``user.<account>`` scope belongs to."""
        names = await self._scope_names(actor, fresh=True)
        return [
            Scope(
                name=name,
                account=name[len(self._scope_prefix) :]
                if name.startswith(self._scope_prefix)
                else None,
                mine=name == actor.scope,
            )
            for name in sorted(names)
        ]

    async def _scope_names(self, actor: Actor, *, fresh: bool = False) -> set[str]:
        stamp, names = self._scopes
        if fresh or time.monotonic() - stamp > _SCOPES_TTL:
            data = await self._rest.json(
                "GET", "/scopes/", auth=self._user(actor), operation="list_scopes"
            )
            names = {str(s) for s in data or []}
            self._scopes = (time.monotonic(), names)
        return names

    async def scope_exists(self, actor: Actor, scope: str) -> bool:
        """True if ``scope`` exists (scope list cached for a few seconds)."""
        if scope in await self._scope_names(actor):
            return True
        return scope in await self._scope_names(actor, fresh=True)

    async def create_project_scope(
        self, scope: str, *, account: str, quota_bytes: int | None
    ) -> None:
        """A project's scope and GROUP account, with the service's own rights."""
        if await self.scope_exists(self.service_actor(), scope):
            raise ScopeExistsError(f"the scope {scope} exists")
        try:
            await self._accounts.provision_project(scope, account, quota_bytes)
        finally:
            self._scopes = (0.0, set())  # the next existence check asks Rucio

    # ------------------------------------------------------------------ DIDs

    async def get_did(self, actor: Actor, scope: str, name: str) -> Did:
        """``GET /dids/{scope}/{name}/meta``, custom keys too (plugin=ALL) where Rucio has them."""
        auth = self._user(actor)
        if self._meta_plugin is None:
            try:
                data = await self._rest.json(
                    "GET",
                    _path(scope, name) + "/meta",
                    auth=auth,
                    operation="get_metadata",
                    params={"plugin": "ALL"},
                )
            except BadGatewayError:
                # A Rucio without a custom-metadata plugin answers 500 to plugin=ALL (SQLite
                # without the embedded mode's vre_sqlite_meta: Rucio's JSON plugin is off
                # there): remember, and read the DID columns only from now on.
                self._meta_plugin = "DID_COLUMN"
            else:
                self._meta_plugin = "ALL"
                return _did_from_meta(data)
        data = await self._rest.json(
            "GET",
            _path(scope, name) + "/meta",
            auth=auth,
            operation="get_metadata",
            params={"plugin": self._meta_plugin},
        )
        return _did_from_meta(data)

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
        if self._meta_plugin is None:
            # Probe once: a search on a key no DID column has is refused by Rucio unless a
            # custom-metadata plugin manages it (Rucio's JSON plugin on PostgreSQL, the
            # embedded mode's vre_sqlite_meta on SQLite).
            try:
                async for _ in self._rest.stream(
                    "GET",
                    f"/dids/{quote(actor.scope, safe='')}/dids/search",
                    auth=self._user(actor),
                    operation="probe_metadata_plugin",
                    params={"type": "all", "limit": 1, "filters": repr([{"vre_probe": 1}])},
                ):
                    pass
            except InvalidInputError:
                self._meta_plugin = "DID_COLUMN"
            else:
                self._meta_plugin = "ALL"
        if self._meta_plugin == "DID_COLUMN":
            raise InvalidInputError(
                f"this Rucio stores only its DID-column metadata keys; {', '.join(custom)} "
                "would need a custom-metadata plugin (Rucio's JSON plugin on PostgreSQL, "
                "vre_sqlite_meta on SQLite)",
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
        """``GET /dids/{scope}/dids/search`` streamed."""
        group: dict[str, Any] = {"name": name}
        for f in filters:
            key = f.key if f.op == "eq" else f"{f.key}.{f.op}"
            group[key] = _filter_value(f.value)
        params: dict[str, Any] = {
            "type": did_type,
            "long": "True",
            "filters": repr([group]),
        }
        if limit is not None:
            params["limit"] = limit
        async for item in self._rest.stream(
            "GET",
            f"/dids/{quote(scope, safe='')}/dids/search",
            auth=self._user(actor),
            operation="list_dids",
            params=params,
            field="meta",
        ):
            yield _did_from_listing(scope, item)

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
            _path(scope, name),
            auth=self._user(actor),
            operation=f"add_{did_type}",
            json_body=body,
            field="metadata",
        )

    async def attach(self, actor: Actor, scope: str, name: str, dids: Sequence[DidRef]) -> None:
        """``POST /dids/{scope}/{name}/dids``."""
        await self._rest.request(
            "POST",
            _path(scope, name) + "/dids",
            auth=self._user(actor),
            operation="attach_dids",
            json_body={"dids": [{"scope": d.scope, "name": d.name} for d in dids]},
            field="dids",
        )

    async def detach(self, actor: Actor, scope: str, name: str, dids: Sequence[DidRef]) -> None:
        """``DELETE /dids/{scope}/{name}/dids``."""
        await self._rest.request(
            "DELETE",
            _path(scope, name) + "/dids",
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
            _path(scope, name) + "/meta",
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
            "GET", _path(scope, name) + "/dids", auth=self._user(actor), operation="list_content"
        ):
            yield _did_from_listing(scope, item)

    async def iter_replicas(
        self, actor: Actor, dids: Sequence[DidRef], *, all_states: bool = False
    ) -> AsyncIterator[FileReplicas]:
        """``POST /replicas/list`` streamed (collections are expanded by Rucio)."""
        body = {
            "dids": [{"scope": d.scope, "name": d.name} for d in dids],
            "all_states": all_states,
            "ignore_availability": True,
            "resolve_archives": False,
        }
        async for item in self._rest.stream(
            "POST",
            "/replicas/list",
            auth=self._user(actor),
            operation="list_replicas",
            json_body=body,
            idempotent=True,  # a read that Rucio takes by POST
        ):
            states: dict[str, str] = item.get("states") or {}
            replicas = []
            for rse, pfns in (item.get("rses") or {}).items():
                url = pfns[0] if pfns else None
                replicas.append(
                    Replica(
                        rse=rse,
                        state=str(states.get(rse, "AVAILABLE")),
                        url=url,
                        path=local_path(url) if url else None,
                    )
                )
            for rse, state in states.items():
                if rse not in (item.get("rses") or {}):
                    replicas.append(Replica(rse=rse, state=str(state)))
            yield FileReplicas(
                scope=item["scope"],
                name=item["name"],
                bytes=item.get("bytes"),
                adler32=item.get("adler32"),
                md5=item.get("md5"),
                replicas=sorted(replicas, key=lambda r: r.rse),
            )

    # ------------------------------------------------------------------ writing files

    async def pfn_for_write(self, actor: Actor, rse: str, scope: str, name: str) -> str:
        """``GET /rses/{rse}/lfns2pfns?operation=write`` (Rucio's own lfn2pfn)."""
        did = f"{scope}:{name}"
        data = await self._rest.json(
            "GET",
            f"/rses/{quote(rse)}/lfns2pfns",
            auth=self._user(actor),
            operation="lfns2pfns",
            params={"lfn": did, "operation": "write"},
            field="rse",
        )
        pfn = (data or {}).get(did)
        if not pfn:
            raise InvalidInputError(
                f"{rse} has no protocol to write with",
                errors=[{"loc": ["query", "rse"], "msg": "not writable", "type": "value_error"}],
            )
        return str(pfn)

    async def register_file(
        self,
        actor: Actor,
        rse: str,
        did: DidRef,
        *,
        size: int,
        adler32: str,
        md5: str,
        pfn: str | None,
    ) -> None:
        """``POST /replicas``, then a rule of the caller's account on the RSE.

        In service mode the replica is registered by the service (Rucio's generic policy lets
        only administrators add replicas), so the file DID's ``account`` is the service's;
        the rule — what holds the bytes and counts against quota — is the caller's.
        """
        entry: dict[str, Any] = {
            "scope": did.scope,
            "name": did.name,
            "bytes": size,
            "adler32": adler32,
            "md5": md5,
            "meta": {},
        }
        if pfn:
            entry["pfn"] = pfn
        await self._rest.request(
            "POST",
            "/replicas",
            auth=self._privileged(actor),
            operation="add_replicas",
            json_body={"rse": rse, "files": [entry], "ignore_availability": True},
        )
        try:
            await self._add_upload_rule(actor, rse, did)
        except QuotaError as exc:
            await self.remove_replica(actor, rse, did)
            raise await self._quota_error(actor, rse, size) from exc
        except VreError:
            await self.remove_replica(actor, rse, did)
            raise

    async def _add_upload_rule(self, actor: Actor, rse: str, did: DidRef) -> None:
        await self._rest.request(
            "POST",
            "/rules/",
            auth=self._user(actor),
            operation="add_rule",
            json_body={
                "dids": [{"scope": did.scope, "name": did.name}],
                "copies": 1,
                "rse_expression": rse,
                "account": actor.account,
                "grouping": "NONE",
                "activity": "User Subscriptions",
                "comment": "upload through the VRE data lake",
            },
        )

    async def has_replica(self, actor: Actor, rse: str, did: DidRef) -> bool:
        """Whether Rucio lists a replica of ``did`` on ``rse`` (any state)."""
        try:
            async for item in self.iter_replicas(actor, [did], all_states=True):
                if any(replica.rse == rse for replica in item.replicas):
                    return True
        except NotFoundError:
            return False
        return False

    async def settle_registration(self, actor: Actor, rse: str, did: DidRef) -> bool:
        """Finish a registration whose outcome was lost (Rucio went away mid-way).

        Rucio's generic policy lets nobody delete a replica through the API (the reaper
        does), so a replica that did get registered cannot be taken back: the registration
        is finished instead — the account's rule is added unless it exists.
        """
        if not await self.has_replica(actor, rse, did):
            return False
        rules = await self._collect(
            self._rest.stream(
                "GET",
                _path(did.scope, did.name) + "/rules",
                auth=self._privileged(actor),
                operation="list_did_rules",
            )
        )
        if not any(
            r.get("account") == actor.account and r.get("rse_expression") == rse for r in rules
        ):
            await self._add_upload_rule(actor, rse, did)
        return True

    async def _quota_error(self, actor: Actor, rse: str, requested: int | None) -> QuotaError:
        usage = {u.rse: u for u in await self.account_usage(actor)}
        entry = usage.get(rse)
        return QuotaError(
            rse,
            limit_bytes=entry.limit_bytes if entry else None,
            used_bytes=entry.used_bytes if entry else None,
            requested_bytes=requested,
        )

    async def remove_replica(self, actor: Actor, rse: str, did: DidRef) -> None:
        """``DELETE /replicas`` (best effort: the DID name itself stays taken in Rucio)."""
        with contextlib.suppress(VreError):
            await self._rest.request(
                "DELETE",
                "/replicas",
                auth=self._privileged(actor),
                operation="delete_replicas",
                json_body={
                    "rse": rse,
                    "files": [{"scope": did.scope, "name": did.name}],
                    "ignore_availability": True,
                },
            )

    # ------------------------------------------------------------------ rules and usage

    async def add_rules(self, actor: Actor, request: RuleCreate) -> list[str]:
        """``POST /rules/`` (one rule per DID, all in one call)."""
        dids = []
        for did in request.dids:
            scope, _, name = did.partition(":")
            dids.append({"scope": scope, "name": name})
        body = {
            "dids": dids,
            "copies": request.copies,
            "rse_expression": request.rse_expression,
            "lifetime": request.lifetime,
            "account": actor.account,
            "grouping": request.grouping,
            "activity": request.activity,
            "comment": request.comment,
            "locked": False,
            "notify": "N",
            "purge_replicas": False,
            "ignore_availability": False,
            "ask_approval": False,
            "asynchronous": False,
            "priority": 3,
        }
        try:
            ids = await self._rest.json(
                "POST",
                "/rules/",
                auth=self._user(actor),
                operation="add_rule",
                json_body=body,
                field="rse_expression",
            )
        except QuotaError as exc:
            names = await self.rse_names(actor, request.rse_expression)
            if len(names) == 1:
                raise await self._quota_error(actor, names[0], None) from exc
            raise QuotaError(
                request.rse_expression,
                limit_bytes=None,
                used_bytes=None,
                requested_bytes=None,
                detail=(
                    f"not enough quota on {request.rse_expression} for this rule; "
                    "GET /usage has the numbers per RSE"
                ),
            ) from exc
        return [str(i) for i in ids or []]

    async def iter_rules(self, actor: Actor) -> AsyncIterator[Rule]:
        """``GET /accounts/{account}/rules`` streamed."""
        async for item in self._rest.stream(
            "GET",
            f"/accounts/{quote(actor.account)}/rules",
            auth=self._user(actor),
            operation="list_account_rules",
        ):
            yield _rule(item)

    async def get_rule(self, actor: Actor, rule_id: str) -> Rule:
        """``GET /rules/{id}``."""
        data = await self._rest.json(
            "GET", f"/rules/{quote(rule_id)}", auth=self._user(actor), operation="get_rule"
        )
        return _rule(data)

    async def rule_locks(self, actor: Actor, rule: Rule) -> list[Lock]:
        """``GET /rules/{id}/locks``, with each file's size from ``GET /dids/…/files``.

        (Rucio's lock listing carries no sizes; the rule's DID lists its files with them.)
        """
        auth = self._user(actor)
        locks, files = await asyncio.gather(
            self._collect(
                self._rest.stream(
                    "GET",
                    f"/rules/{quote(rule.id)}/locks",
                    auth=auth,
                    operation="list_rule_locks",
                )
            ),
            self._collect(
                self._rest.stream(
                    "GET",
                    _path(rule.scope, rule.name) + "/files",
                    auth=auth,
                    operation="list_files",
                )
            ),
        )
        sizes = {(f["scope"], f["name"]): f.get("bytes") for f in files}
        return [
            Lock(
                scope=item["scope"],
                name=item["name"],
                rse=item.get("rse") or item.get("rse_id", ""),
                state=str(item.get("state")),
                bytes=sizes.get((item["scope"], item["name"])),
            )
            for item in locks
        ]

    async def update_rule_lifetime(self, actor: Actor, rule_id: str, lifetime: int | None) -> None:
        """``PUT /rules/{id}`` with ``{"options": {"lifetime": …}}``."""
        await self._rest.request(
            "PUT",
            f"/rules/{quote(rule_id)}",
            auth=self._privileged(actor),
            operation="update_rule",
            json_body={"options": {"lifetime": lifetime}},
            field="lifetime",
        )

    async def delete_rule(self, actor: Actor, rule_id: str) -> None:
        """``DELETE /rules/{id}``."""
        await self._rest.request(
            "DELETE",
            f"/rules/{quote(rule_id)}",
            auth=self._privileged(actor),
            operation="delete_rule",
            json_body={"purge_replicas": None},
        )

    async def account_usage(self, actor: Actor) -> list[RseUsage]:
        """``GET /accounts/{account}/usage/local`` (with the limits on every RSE)."""
        out = []
        async for item in self._rest.stream(
            "GET",
            f"/accounts/{quote(actor.account)}/usage/local",
            auth=self._user(actor),
            operation="get_local_account_usage",
        ):
            limit = item.get("bytes_limit")
            used = int(item.get("bytes") or 0)
            limit_value = int(limit) if limit is not None and limit != float("inf") else None
            out.append(
                RseUsage(
                    rse=str(item["rse"]),
                    used_bytes=used,
                    used_files=int(item.get("files") or 0),
                    limit_bytes=limit_value,
                    remaining_bytes=(
                        max(0, limit_value - used) if limit_value is not None else None
                    ),
                )
            )
        return sorted(out, key=lambda u: u.rse)
