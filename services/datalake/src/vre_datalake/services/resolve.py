"""The DID resolver other services use: DIDs → files with checksums and readable replicas."""

from __future__ import annotations

from collections.abc import Sequence

from vre_datalake.backends.base import Actor, DatalakeBackend
from vre_datalake.backends.rse.base import StorageRouter
from vre_datalake.models import DidRef, ResolvedFile, ResolvedReplica, ResolveResult
from vre_datalake.names import parse_did
from vre_datalake.services.policy import ScopeAction, ScopePolicy


class ResolveService:
    """Expands files, datasets and containers into files and their replica URLs."""

    def __init__(
        self, *, backend: DatalakeBackend, policy: ScopePolicy, storage: StorageRouter
    ) -> None:
        self._backend = backend
        self._policy = policy
        self._storage = storage

    async def resolve(
        self, actor: Actor, dids: Sequence[str], rse_expression: str | None
    ) -> ResolveResult:
        """Every file once (first parent wins), preferred-RSE replicas first."""
        refs = []
        for index, did in enumerate(dids):
            scope, name = parse_did(did, f"dids.{index}")
            await self._policy.authorize(actor, scope, ScopeAction.READ)
            refs.append(DidRef(scope=scope, name=name))
        preferred = (
            set(await self._backend.rse_names(actor, rse_expression)) if rse_expression else set()
        )
        files: dict[str, ResolvedFile] = {}
        for ref in refs:
            await self._backend.get_did(actor, ref.scope, ref.name)  # 404 for unknown DIDs
            async for item in self._backend.iter_replicas(actor, [ref]):
                key = f"{item.scope}:{item.name}"
                if key in files:
                    continue
                replicas = [
                    ResolvedReplica(rse=r.rse, url=r.url, path=r.path, preferred=r.rse in preferred)
                    for r in item.replicas
                    if r.url and r.state == "AVAILABLE"
                ]
                replicas.sort(key=lambda r: (not r.preferred, r.rse))
                files[key] = ResolvedFile(
                    scope=item.scope,
                    name=item.name,
                    bytes=item.bytes or 0,
                    adler32=item.adler32,
                    md5=item.md5,
                    parent=str(ref),
                    replicas=replicas,
                )
        return ResolveResult(files=list(files.values()))
