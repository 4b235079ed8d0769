"""DIDs: search, metadata, collections and their content."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, TypeVar

from vre_common.provenance.events import EventKind
from vre_common.provenance.ids import did_id
from vre_datalake.backends.base import Actor, DatalakeBackend, MetadataFilter
from vre_datalake.models import (
    BulkMetadataUpdate,
    Did,
    DidCreate,
    DidPage,
    DidRef,
)
from vre_datalake.names import check_name, parse_did
from vre_datalake.services.policy import ScopeAction, ScopePolicy
from vre_datalake.services.provenance import ProvenanceRecorder

T = TypeVar("T")


class DidService:
    """The rules around DIDs: scopes as the policy allows, names checked before Rucio sees them."""

    def __init__(
        self, *, backend: DatalakeBackend, policy: ScopePolicy, recorder: ProvenanceRecorder
    ) -> None:
        self._backend = backend
        self._policy = policy
        self._recorder = recorder

    async def get(self, actor: Actor, scope: str, name: str) -> Did:
        """One DID with its metadata."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        return await self._backend.get_did(actor, scope, check_name(name))

    async def search(
        self,
        actor: Actor,
        scope: str,
        *,
        name: str,
        did_type: str,
        filters: Sequence[MetadataFilter],
        limit: int | None,
    ) -> AsyncGenerator[Did, None]:
        """Matching DIDs (``name`` a pattern with ``*``), streamed; errors surface before the
        first result is returned."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        stream = self._backend.iter_dids(
            actor, scope, name=name, did_type=did_type, filters=filters, limit=limit
        )
        return await primed(stream)

    async def page(
        self,
        actor: Actor,
        scope: str,
        *,
        name: str,
        did_type: str,
        filters: Sequence[MetadataFilter],
        offset: int,
        limit: int,
    ) -> DidPage:
        """One page of a search (memory bounded by the page, however many DIDs match)."""
        stream = await self.search(
            actor, scope, name=name, did_type=did_type, filters=filters, limit=offset + limit + 1
        )
        items: list[Did] = []
        index = 0
        try:
            async for did in stream:
                if index >= offset:
                    items.append(did)
                    if len(items) > limit:
                        break
                index += 1
        finally:
            await stream.aclose()
        more = len(items) > limit
        return DidPage(
            items=items[:limit],
            offset=offset,
            limit=limit,
            next_offset=offset + limit if more else None,
        )

    async def create(self, actor: Actor, scope: str, request: DidCreate) -> Did:
        """A new dataset or container in a scope the caller may write in."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.WRITE)
        name = check_name(request.name, "name")
        await self._backend.add_collection(
            actor,
            scope,
            name,
            request.type,
            metadata=request.metadata,
            lifetime=request.lifetime,
        )
        return await self._backend.get_did(actor, scope, name)

    async def _refs(self, actor: Actor, dids: Sequence[str]) -> list[DidRef]:
        refs = []
        for index, did in enumerate(dids):
            scope, name = parse_did(did, f"dids.{index}")
            await self._policy.authorize(actor, scope, ScopeAction.READ)
            refs.append(DidRef(scope=scope, name=name))
        return refs

    async def attach(self, actor: Actor, scope: str, name: str, dids: Sequence[str]) -> None:
        """Attach DIDs the caller may read to a collection the caller may write (an event)."""
        writer = await self._policy.authorize(actor, scope, ScopeAction.WRITE)
        name = check_name(name)
        refs = await self._refs(actor, dids)
        parent = did_id(scope, name)
        event = self._recorder.event(
            EventKind.ATTACH,
            writer,
            used=[did_id(r.scope, r.name) for r in refs],
            generated=[parent],
            labels={parent: name},
        )
        async with self._recorder.recording(event):
            await self._backend.attach(writer, scope, name, refs)

    async def detach(self, actor: Actor, scope: str, name: str, dids: Sequence[str]) -> None:
        """Detach DIDs from a collection (``data.delete`` in a project scope)."""
        writer = await self._policy.authorize(actor, scope, ScopeAction.DELETE)
        refs = await self._refs(actor, dids)
        await self._backend.detach(writer, scope, check_name(name), refs)

    async def set_metadata(
        self, actor: Actor, scope: str, name: str, metadata: dict[str, Any]
    ) -> Did:
        """Set metadata keys on one DID of a writable scope; returns the updated DID."""
        writer = await self._policy.authorize(actor, scope, ScopeAction.WRITE)
        name = check_name(name)
        await self._backend.set_metadata(writer, scope, name, metadata)
        return await self._backend.get_did(writer, scope, name)

    async def set_metadata_bulk(self, actor: Actor, request: BulkMetadataUpdate) -> int:
        """Set metadata on many DIDs of writable scopes (one Rucio call per account)."""
        groups: dict[str, tuple[Actor, list[tuple[DidRef, dict[str, Any]]]]] = {}
        for index, item in enumerate(request.items):
            scope, name = parse_did(item.did, f"items.{index}.did")
            writer = await self._policy.authorize(actor, scope, ScopeAction.WRITE)
            entry = groups.setdefault(writer.account, (writer, []))
            entry[1].append((DidRef(scope=scope, name=name), item.metadata))
        for writer, items in groups.values():
            await self._backend.set_metadata_bulk(writer, items)
        return len(request.items)

    async def content(
        self, actor: Actor, scope: str, name: str, *, recursive: bool
    ) -> AsyncGenerator[Did, None]:
        """The DIDs in a collection (depth-first through sub-collections with ``recursive``)."""
        actor = await self._policy.authorize(actor, scope, ScopeAction.READ)
        name = check_name(name)
        if not recursive:
            return await primed(self._backend.iter_content(actor, scope, name))
        return await primed(self._walk(actor, DidRef(scope=scope, name=name)))

    async def _walk(self, actor: Actor, root: DidRef) -> AsyncIterator[Did]:
        seen = {str(root)}
        stack = [root]
        while stack:
            parent = stack.pop()
            async for did in self._backend.iter_content(actor, parent.scope, parent.name):
                yield did
                key = f"{did.scope}:{did.name}"
                if did.type != "file" and key not in seen:
                    seen.add(key)
                    stack.append(DidRef(scope=did.scope, name=did.name))


async def primed(stream: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """Start ``stream`` now so that its errors become problems before a response begins."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:

        async def empty() -> AsyncGenerator[T, None]:
            return
            yield  # pragma: no cover

        return empty()

    async def chained() -> AsyncGenerator[T, None]:
        try:
            yield first
            async for item in stream:
                yield item
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    return chained()
