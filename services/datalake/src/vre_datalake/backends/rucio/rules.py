"""Replication rules: creating, reading, changing and deleting them, and their locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

from vre_datalake.backends.base import Actor
from vre_datalake.backends.rucio.common import RucioCalls, collect, did_path, did_type, parse_time
from vre_datalake.models import DidRef, Lock, Rule, RuleCreate


def _rule(data: dict[str, Any]) -> Rule:
    return Rule(
        id=data["id"],
        account=data["account"],
        scope=data["scope"],
        name=data["name"],
        did_type=did_type(data.get("did_type")),
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


class RuleCalls(RucioCalls):
    """``/rules`` (and a DID's rules)."""

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
        ids = await self._rest.json(
            "POST",
            "/rules/",
            auth=self._user(actor),
            operation="add_rule",
            json_body=body,
            field="rse_expression",
        )
        return [str(i) for i in ids or []]

    async def add_file_rule(self, actor: Actor, rse: str, did: DidRef) -> None:
        """``POST /rules/``: the account's rule that keeps an uploaded file on its RSE.

        Rucio checks the account's limit on the RSE (QuotaError) and refuses a second
        identical rule (RuleExistsError).
        """
        await self.add_file_rules(actor, rse, [did])

    async def add_file_rules(self, actor: Actor, rse: str, dids: Sequence[DidRef]) -> None:
        """``POST /rules/`` with several files: one such rule per file, all or none (one
        transaction; the limit is checked against their sum)."""
        await self._rest.request(
            "POST",
            "/rules/",
            auth=self._user(actor),
            operation="add_rule",
            json_body={
                "dids": [{"scope": did.scope, "name": did.name} for did in dids],
                "copies": 1,
                "rse_expression": rse,
                "account": actor.account,
                "grouping": "NONE",
                "activity": "User Subscriptions",
                "comment": "upload through the VRE data lake",
            },
            idempotent=True,  # sent twice, the second is refused as a duplicate: same effect
        )

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
            collect(
                self._rest.stream(
                    "GET",
                    f"/rules/{quote(rule.id)}/locks",
                    auth=auth,
                    operation="list_rule_locks",
                )
            ),
            collect(
                self._rest.stream(
                    "GET",
                    did_path(rule.scope, rule.name) + "/files",
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
