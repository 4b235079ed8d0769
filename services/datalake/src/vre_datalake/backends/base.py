"""The catalogue port: what the services need from Rucio, in our models and our errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vre_common.auth import Principal
from vre_datalake.models import (
    CollectionType,
    Did,
    DidRef,
    FileReplicas,
    Lock,
    NewReplica,
    Rse,
    RseUsage,
    Rule,
    RuleCreate,
    Scope,
)


@dataclass(frozen=True)
class Actor:
    """The Rucio account a request acts as, its own scope, and the caller's bearer token.

    For writes in a project scope the policy hands out the project's actor: the project's
    account and scope, still carrying the caller (``principal``, ``user_key``) and the
    project's slug. ``service`` marks the service's own identity (crash recovery checks).
    """

    account: str
    scope: str
    user_key: str
    bearer: str | None = None
    principal: Principal | None = field(default=None, compare=False, repr=False)
    project: str | None = None
    service: bool = False


@dataclass(frozen=True)
class MetadataFilter:
    """One ``key <op> value`` condition of a DID search (op: eq, ne, gt, gte, lt, lte)."""

    key: str
    op: str
    value: Any


class DatalakeBackend(Protocol):
    """The Data Lake catalogue (Rucio). Every call acts for ``actor``."""

    async def bind(self, principal: Principal, bearer: str | None) -> Actor:
        """The account for a validated caller (created on first use in service mode)."""
        ...

    def service_actor(self) -> Actor:
        """The service's own identity (for checks no user asked for)."""
        ...

    async def ping(self) -> None:
        """Raise if the catalogue is unreachable."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

    # --- RSEs and scopes
    async def list_rses(self, actor: Actor, expression: str | None = None) -> list[Rse]:
        """RSEs (matching ``expression``), with attributes and space."""
        ...

    async def get_rse(self, actor: Actor, rse: str) -> Rse:
        """One RSE; RseNotFoundError if unknown."""
        ...

    async def rse_names(self, actor: Actor, expression: str) -> list[str]:
        """Names of the RSEs matching an RSE expression."""
        ...

    async def list_scopes(self, actor: Actor) -> list[Scope]:
        """Every scope."""
        ...

    async def scope_exists(self, actor: Actor, scope: str) -> bool:
        """True if the scope exists."""
        ...

    async def create_project_scope(
        self, scope: str, *, account: str, quota_bytes: int | None
    ) -> None:
        """Create ``scope`` owned by the GROUP account ``account`` (made if missing), map the
        service's identity to it and set its limit on every RSE; ScopeExistsError if the
        scope exists."""
        ...

    # --- DIDs
    async def get_did(self, actor: Actor, scope: str, name: str) -> Did:
        """One DID with its metadata; DidNotFoundError if missing."""
        ...

    async def stat_did(self, actor: Actor, scope: str, name: str) -> Did:
        """One DID's type, size and checksums (no metadata); DidNotFoundError if missing."""
        ...

    async def check_metadata_keys(self, actor: Actor, keys: Sequence[str]) -> None:
        """Raise 422 if the catalogue cannot store metadata under some of ``keys``."""
        ...

    def iter_dids(
        self,
        actor: Actor,
        scope: str,
        *,
        name: str,
        did_type: str,
        filters: Sequence[MetadataFilter],
        limit: int | None,
    ) -> AsyncIterator[Did]:
        """DIDs of a scope matching a name pattern, type and metadata, streamed."""
        ...

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
        """Create a dataset or container."""
        ...

    async def attach(self, actor: Actor, scope: str, name: str, dids: Sequence[DidRef]) -> None:
        """Attach DIDs to a collection."""
        ...

    async def detach(self, actor: Actor, scope: str, name: str, dids: Sequence[DidRef]) -> None:
        """Detach DIDs from a collection."""
        ...

    async def set_metadata(
        self, actor: Actor, scope: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Set metadata keys on one DID."""
        ...

    async def set_metadata_bulk(
        self, actor: Actor, items: Sequence[tuple[DidRef, dict[str, Any]]]
    ) -> None:
        """Set metadata on many DIDs."""
        ...

    def iter_content(self, actor: Actor, scope: str, name: str) -> AsyncIterator[Did]:
        """The DIDs directly attached to a collection, streamed."""
        ...

    def iter_replicas(
        self, actor: Actor, dids: Sequence[DidRef], *, all_states: bool = False
    ) -> AsyncIterator[FileReplicas]:
        """The files behind DIDs (collections expanded) with their replicas, streamed."""
        ...

    # --- writing files
    async def write_pfn(self, actor: Actor, rse: str, did: DidRef) -> str:
        """The PFN at which a new file ``did`` of ``rse`` must be written."""
        ...

    def forget_rse(self, rse: str) -> None:
        """Drop what is cached about writing to ``rse``."""
        ...

    async def add_replica(
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
        """Register a replica written at ``pfn`` (and its file DID if new), all or nothing."""
        ...

    def replica_registrar(self, actor: Actor) -> Actor:
        """Who registers ``actor``'s replicas (the same for many actors where it can be)."""
        ...

    async def add_replicas(self, actor: Actor, rse: str, files: Sequence[NewReplica]) -> None:
        """Register several replicas of one RSE in one call, all or nothing."""
        ...

    async def add_file_rule(self, actor: Actor, rse: str, did: DidRef) -> None:
        """The account's rule that keeps ``did`` on ``rse`` (QuotaError, RuleExistsError)."""
        ...

    async def add_file_rules(self, actor: Actor, rse: str, dids: Sequence[DidRef]) -> None:
        """:meth:`add_file_rule` for several files in one call, all or nothing."""
        ...

    # --- rules and usage
    async def add_rules(self, actor: Actor, request: RuleCreate) -> list[str]:
        """Create one rule per DID; returns their ids."""
        ...

    def iter_rules(self, actor: Actor) -> AsyncIterator[Rule]:
        """The account's rules."""
        ...

    async def get_rule(self, actor: Actor, rule_id: str) -> Rule:
        """One rule."""
        ...

    async def rule_locks(self, actor: Actor, rule: Rule) -> list[Lock]:
        """The locks of a rule, with the size of each locked file."""
        ...

    async def update_rule_lifetime(self, actor: Actor, rule_id: str, lifetime: int | None) -> None:
        """Set a rule's lifetime in seconds (None: no expiry)."""
        ...

    async def delete_rule(self, actor: Actor, rule_id: str) -> None:
        """Delete a rule."""
        ...

    async def account_usage(self, actor: Actor) -> list[RseUsage]:
        """Usage and limits of the account per RSE."""
        ...
