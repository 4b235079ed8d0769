"""Replicas: where the files behind DIDs are, and registering a new one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from vre_datalake.backends.base import Actor
from vre_datalake.backends.rucio.common import RucioCalls
from vre_datalake.models import DidRef, FileReplicas, NewReplica, Replica


def local_path(url: str) -> str | None:
    """The local path of a ``file://`` PFN, else None."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return unquote(parts.path)
    return None


class ReplicaCalls(RucioCalls):
    """``/replicas``."""

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

    def replica_registrar(self, actor: Actor) -> Actor:
        """Who registers ``actor``'s replicas: the service in service mode (one identity for
        every account, so registrations of many accounts can share a call), else the actor."""
        return actor if self._token_mode else self.service_actor()

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
        """``POST /replicas``: one AVAILABLE replica (the file DID too if it is new).

        In service mode the service registers it (Rucio's generic policy lets only
        administrators add replicas), so a new file DID's ``account`` is the service's.
        Rucio does it in one transaction: refused, nothing is registered. For a DID that
        exists Rucio keeps the DID's own size and checksums (it compares nothing), and a
        replica that exists already is left as it is: the call is idempotent, so it is sent
        again when its connection was reset before the answer.
        """
        file = NewReplica(did=did, size=size, adler32=adler32, md5=md5, pfn=pfn)
        await self.add_replicas(actor, rse, [file])

    async def add_replicas(self, actor: Actor, rse: str, files: Sequence[NewReplica]) -> None:
        """``POST /replicas`` with several files of one RSE: all registered, or none (one
        transaction); otherwise as :meth:`add_replica`."""
        entries: list[dict[str, Any]] = []
        for file in files:
            entry: dict[str, Any] = {
                "scope": file.did.scope,
                "name": file.did.name,
                "bytes": file.size,
                "adler32": file.adler32,
                "md5": file.md5,
            }
            if file.pfn:
                entry["pfn"] = file.pfn
            entries.append(entry)
        await self._rest.request(
            "POST",
            "/replicas",
            auth=self._privileged(actor),
            operation="add_replicas",
            json_body={"rse": rse, "files": entries, "ignore_availability": True},
            idempotent=True,  # sent twice, the second finds the replicas and adds nothing
        )
