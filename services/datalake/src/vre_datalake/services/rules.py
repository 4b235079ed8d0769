"""Replication rules of the caller's account (and of their projects), and usage against limits.

A rule belongs to one Rucio account. The caller's own rules are theirs to change; a rule of a
project's account (the one every upload into the project scope gets) is read with
``data.read``, changed with ``data.write`` and deleted with ``data.delete`` in that project.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Literal

from vre_common.errors import NotFoundError
from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.errors import QuotaError, RuleNotFoundError, ScopeNotFoundError
from vre_datalake.models import (
    Rule,
    RuleCreate,
    RulesCreated,
    RuleWithLocks,
    Usage,
)
from vre_datalake.names import parse_did
from vre_datalake.services.policy import ProjectScopes, ScopeAction, ScopePolicy

_RULE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_LOCK_CONCURRENCY = 8


class RuleService:
    """Rules: created on DIDs the caller may read; read, changed and deleted only by their owner."""

    def __init__(
        self, *, backend: DatalakeBackend, policy: ScopePolicy, projects: ProjectScopes
    ) -> None:
        self._backend = backend
        self._policy = policy
        self._projects = projects

    async def create(self, actor: Actor, request: RuleCreate) -> RulesCreated:
        """One rule per DID, owned by the caller's account (quota checked by Rucio)."""
        for index, did in enumerate(request.dids):
            scope, _ = parse_did(did, f"dids.{index}")
            await self._policy.authorize(actor, scope, ScopeAction.READ)
        try:
            return RulesCreated(ids=await self._backend.add_rules(actor, request))
        except QuotaError as exc:
            raise await self._quota_error(actor, request.rse_expression) from exc

    async def _quota_error(self, actor: Actor, expression: str) -> QuotaError:
        """Rucio's refusal with the numbers of the one RSE it was about (if one)."""
        names = await self._backend.rse_names(actor, expression)
        if len(names) == 1:
            usage = {u.rse: u for u in await self._backend.account_usage(actor)}
            entry = usage.get(names[0])
            return QuotaError(
                names[0],
                limit_bytes=entry.limit_bytes if entry else None,
                used_bytes=entry.used_bytes if entry else None,
                requested_bytes=None,
            )
        return QuotaError(
            expression,
            limit_bytes=None,
            used_bytes=None,
            requested_bytes=None,
            detail=(
                f"not enough quota on {expression} for this rule; "
                "GET /usage has the numbers per RSE"
            ),
        )

    async def _locked_bytes(self, actor: Actor, rule: Rule, limit: asyncio.Semaphore) -> Rule:
        async with limit:
            locks = await self._backend.rule_locks(actor, rule)
        rule.locked_bytes = sum(lock.bytes or 0 for lock in locks)
        return rule

    async def list(
        self, actor: Actor, *, sort: Literal["created", "bytes"] = "created"
    ) -> list[Rule]:
        """The caller's rules with the bytes each locks (``sort=bytes``: biggest first)."""
        rules = [rule async for rule in self._backend.iter_rules(actor)]
        limit = asyncio.Semaphore(_LOCK_CONCURRENCY)
        rules = list(await asyncio.gather(*(self._locked_bytes(actor, r, limit) for r in rules)))
        if sort == "bytes":
            rules.sort(key=lambda r: (-(r.locked_bytes or 0), r.id))
        else:
            rules.sort(key=lambda r: (r.created_at is None, r.created_at, r.id))
        return rules

    async def _own(
        self, actor: Actor, rule_id: str, action: ScopeAction = ScopeAction.READ
    ) -> tuple[Rule, Actor]:
        """The rule and who acts on it: the caller for their own, the project for a project's."""
        if not _RULE_ID.match(rule_id):
            raise RuleNotFoundError(f"no rule {rule_id!r}")
        rule = await self._backend.get_rule(actor, rule_id.lower())
        if rule.account == actor.account:
            return rule, actor
        project_scope = self._projects.scope_of_account(rule.account)
        if project_scope is not None:
            try:
                return rule, await self._policy.authorize(actor, project_scope, action)
            except NotFoundError:
                raise RuleNotFoundError(f"no rule {rule_id} you may see") from None
        raise RuleNotFoundError(f"no rule {rule_id} of yours")

    async def get(self, actor: Actor, rule_id: str) -> RuleWithLocks:
        """One of the caller's rules (or of their projects') with its locks."""
        rule, _ = await self._own(actor, rule_id)
        locks = await self._backend.rule_locks(actor, rule)
        return RuleWithLocks(
            **rule.model_dump(exclude={"locked_bytes"}),
            locked_bytes=sum(lock.bytes or 0 for lock in locks),
            locks=locks,
        )

    async def update_lifetime(
        self, actor: Actor, rule_id: str, lifetime: int | None
    ) -> RuleWithLocks:
        """Change the lifetime of one of the caller's rules."""
        rule, owner = await self._own(actor, rule_id, ScopeAction.WRITE)
        await self._backend.update_rule_lifetime(owner, rule.id, lifetime)
        return await self.get(actor, rule.id)

    async def delete(self, actor: Actor, rule_id: str, *, immediately: bool = False) -> None:
        """Delete one of the caller's rules.

        Rucio's deletion is soft: the rule expires an hour later and its replicas are
        reaped after that. ``immediately`` sets the rule's lifetime to zero instead, so the
        next daemon pass removes it.
        """
        rule, owner = await self._own(actor, rule_id, ScopeAction.DELETE)
        if immediately:
            await self._backend.update_rule_lifetime(owner, rule.id, 0)
        else:
            await self._backend.delete_rule(owner, rule.id)


class UsageService:
    """How much room the caller (or a project of theirs) has, and where."""

    def __init__(
        self, *, backend: DatalakeBackend, policy: ScopePolicy, projects: ProjectScopes
    ) -> None:
        self._backend = backend
        self._policy = policy
        self._projects = projects

    async def usage(self, actor: Actor, scope: str | None = None) -> Usage:
        """Per RSE: bytes and files used, the limit, what remains, and the RSE's free space.

        With a project ``scope``: the project account's (``data.read`` in the project; read
        with the service's rights, as Rucio shows an account's usage only to itself and admins).
        """
        owner = actor
        if scope is not None and scope != actor.scope:
            await self._policy.authorize(actor, scope, ScopeAction.READ)
            if not self._projects.is_project_scope(scope):
                raise ScopeNotFoundError(f"{scope} is not a project scope: ask for your own usage")
            owner = dataclasses.replace(
                self._backend.service_actor(), account=self._projects.account_of(scope)
            )
        entries, rses = await asyncio.gather(
            self._backend.account_usage(owner), self._backend.list_rses(actor)
        )
        free = {
            rse.name: next(
                (s.free_bytes for s in rse.space if s.source == "storage" and s.free_bytes),
                None,
            )
            for rse in rses
        }
        for entry in entries:
            entry.rse_free_bytes = free.get(entry.rse)
        limits = [e.limit_bytes for e in entries]
        return Usage(
            account=owner.account,
            rses=entries,
            used_bytes=sum(e.used_bytes for e in entries),
            limit_bytes=None if not limits or None in limits else sum(x or 0 for x in limits),
        )
