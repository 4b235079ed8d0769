"""The provenance graph: ingest events (idempotent), walk it up or down, export PROV-JSON.

Nodes are entities (``did:…``, ``doi:…``) and activities (``run:…``, and one per upload,
attach, import, publish or delete event). Edges: ``activity used entity`` and
``entity wasGeneratedBy activity``. A node belongs to a project (a DID to the project owning
its scope, anything else to the event's project); callers see only nodes of projects where
they may ``provenance.read`` — and DOIs that belong to no project, which are public.

A node outside every project (a personal upload, run or publication) is its owner's: the actor
of the event that recorded it first, who sees it as project members see theirs. Whoever else
may read the DID or the run may read its node: for a personal one that is nobody while it is
unpublished (the Data Lake gives a ``user.<account>`` scope and the workflows service a
personal run to their owner alone, 404 to others), and anybody signed in once a DOI was
published from it — Zenodo publishes the run record (the run, its specification, its inputs'
and outputs' DIDs and checksums), so the personal chain up to a published DOI (the nodes from
which a DOI is reached through personal nodes only) is readable by every signed-in user. A
chain through a project's node does not make the personal nodes above it public: the
project's rule governs its node, and the walk does not pass where the caller may not read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from vre_common.auth import Principal
from vre_common.policy import Action
from vre_common.provenance.events import Event, EventKind, IngestResult
from vre_common.provenance.ids import check_entity_id, id_type
from vre_gateway.config import ProvenanceSettings
from vre_gateway.errors import IngestForbiddenError, ProvenanceNotFoundError
from vre_gateway.models.provenance import Direction, ProvEdge, ProvenanceGraph, ProvNode
from vre_gateway.services.access import AccessService
from vre_gateway.services.audit import AuditEntryDraft, Auditor
from vre_gateway.storage.projects import ProjectStore
from vre_gateway.storage.provenance import ProvenanceStore
from vre_gateway.storage.records import NodeRecord, ProjectRecord

ACTIVITY_PREFIXES = frozenset({"run"} | {k.value for k in EventKind})
PROV_NS = "https://vre.example.org/ns/prov#"


def is_activity(node_id: str) -> bool:
    """Runs and per-event activities are activities; everything else is an entity."""
    return id_type(node_id) in ACTIVITY_PREFIXES


def _scope_of(entity: str) -> str | None:
    if not entity.startswith("did:"):
        return None
    return entity.split(":", 2)[1]


class ProvenanceService:
    """Stores events as a graph and answers lineage questions."""

    def __init__(
        self,
        *,
        store: ProvenanceStore,
        projects: ProjectStore,
        access: AccessService,
        auditor: Auditor,
        settings: ProvenanceSettings,
        admin_groups: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.projects = projects
        self.access = access
        self.auditor = auditor
        self.settings = settings
        self.admin_groups = list(admin_groups)

    def check_writer(self, principal: Principal) -> None:
        """Only the VRE's services (configured clients or groups) post events."""
        if principal.client_id and principal.client_id in self.settings.ingest_clients:
            return
        if any(principal.in_group(g) for g in [*self.settings.ingest_groups, *self.admin_groups]):
            return
        raise IngestForbiddenError("only the VRE's services may post provenance events")

    # ------------------------------------------------------------------ ingest

    async def ingest(self, events: Sequence[Event]) -> IngestResult:
        """Add events to the graph; events already received are counted and skipped.

        A batch costs a few statements, not a few per event: the relays deliver up to a
        hundred events at a time when many researchers work at once."""
        slugs = {e.project for e in events if e.project}
        scopes = {s for e in events for i in (*e.used, *e.generated) if (s := _scope_of(i))}
        by_slug = await self.projects.ids_by_slug(sorted(slugs))
        by_scope = await self.projects.ids_by_scope(sorted(scopes))
        records = await self.projects.get_many([*by_slug.values(), *by_scope.values()])
        now = datetime.now(UTC)
        fresh = await self.store.claim_events(
            [(str(e.id), e.kind.value, e.service, e.time) for e in events], received_at=now
        )
        accepted: list[tuple[Event, str | None]] = []
        for event in events:
            if str(event.id) in fresh:
                fresh.discard(str(event.id))  # the same event twice in one batch counts once
                accepted.append((event, by_slug.get(event.project) if event.project else None))
        nodes: list[NodeRecord] = []
        edges: list[tuple[str, str, str, datetime]] = []
        for event, project_id in accepted:
            nodes.extend(self._nodes(event, project_id, by_scope))
            edges += [(event.activity_id, e, "used", event.time) for e in event.used]
            edges += [(e, event.activity_id, "wasGeneratedBy", event.time) for e in event.generated]
        await self.store.merge_nodes(nodes)
        await self.store.add_edges(edges)
        await self.auditor.record_many(
            [
                AuditEntryDraft(
                    actor=(event.actor, event.actor_name),
                    action=f"{event.service}.{event.kind.value}",
                    project=records.get(project_id) if project_id else None,
                    target=(event.generated or event.used or [event.activity_id])[0],
                    detail={
                        "event": str(event.id),
                        "activity": event.activity_id,
                        "used": event.used[:20],
                        "generated": event.generated[:20],
                    },
                    source=event.service,
                    request_id=event.request_id,
                    at=event.time,
                )
                for event, project_id in accepted
            ]
        )
        return IngestResult(accepted=len(accepted), duplicates=len(events) - len(accepted))

    @staticmethod
    def _nodes(
        event: Event, project_id: str | None, by_scope: Mapping[str, str]
    ) -> list[NodeRecord]:
        """The event's activity and the entities it used and generated, as nodes."""
        activity = event.activity_id
        # a run spans two events; every other activity is an instant
        started = None if event.kind is EventKind.RUN_FINISHED else event.time
        ended = None if event.kind is EventKind.RUN_STARTED else event.time
        nodes = [
            NodeRecord(
                id=activity,
                category="activity",
                type=id_type(activity) if id_type(activity) == "run" else event.kind.value,
                project_id=project_id,
                label=event.labels.get(activity),
                actor=event.actor,
                actor_name=event.actor_name,
                started_at=started,
                ended_at=ended,
                invalidated_at=None,
                attributes=dict(event.attributes),
            )
        ]
        for entity in dict.fromkeys([*event.used, *event.generated]):
            scope = _scope_of(entity)
            entity_project = by_scope.get(scope, project_id) if scope else project_id
            if id_type(entity) == "doi" and entity not in event.generated:
                # a DOI someone imports or reproduces stays whose it was (public if it was):
                # using it in a project does not make it the project's
                entity_project = None
            nodes.append(
                NodeRecord(
                    id=entity,
                    category="activity" if is_activity(entity) else "entity",
                    type=id_type(entity),
                    project_id=entity_project,
                    label=event.labels.get(entity),
                    # outside every project the first actor owns it (actor_name stays unset:
                    # an entity names no agent in the graph)
                    actor=None if entity_project else event.actor,
                    actor_name=None,
                    started_at=None,
                    ended_at=None,
                    invalidated_at=event.time
                    if event.kind is EventKind.DELETE and entity in event.used
                    else None,
                    attributes={},
                )
            )
        return nodes

    # ------------------------------------------------------------------ queries

    async def graph(
        self, principal: Principal, entity: str, direction: Direction, depth: int
    ) -> ProvenanceGraph:
        """What ``entity`` came from (up) or what was derived from it (down), ``depth`` steps.

        A step crosses one activity. Nodes the caller may not read are left out, and the walk
        does not pass through them.
        """
        check_entity_id(entity)
        depth = min(depth, self.settings.max_depth)
        permitted: dict[str | None, bool] = {}
        found = await self.store.nodes([entity])
        root = found.get(entity)
        if root is None or not (await self._visible(principal, [root], permitted))[0]:
            raise ProvenanceNotFoundError(f"no provenance for {entity} that you may read")
        walk: dict[str, int] = {entity: 1 if root.category == "activity" else 0}
        nodes: dict[str, NodeRecord] = {entity: root}
        edges: list[ProvEdge] = []
        seen_edges: set[tuple[str, str, str]] = set()
        frontier = [entity]
        truncated = False
        upward = direction is Direction.UP
        while frontier and not truncated:
            links = await self.store.edges_from(frontier, upward=upward)
            others = [(e.dst if upward else e.src) for e in links]
            fetched = await self.store.nodes([o for o in others if o not in nodes])
            visible = dict(
                zip(
                    fetched,
                    await self._visible(principal, list(fetched.values()), permitted),
                    strict=True,
                )
            )
            next_frontier: list[str] = []
            for link, other in zip(links, others, strict=True):
                current = link.src if upward else link.dst
                node = nodes.get(other) or fetched.get(other)
                if node is None or (other not in nodes and not visible.get(other)):
                    continue
                step = walk[current] + (1 if node.category == "activity" else 0)
                if other not in nodes:
                    if step > depth:
                        continue
                    if len(nodes) >= self.settings.max_nodes:
                        truncated = True
                        break
                    nodes[other] = node
                    walk[other] = step
                    next_frontier.append(other)
                key = (link.src, link.dst, link.relation)
                if key not in seen_edges:
                    seen_edges.add(key)
                    edges.append(ProvEdge(source=link.src, target=link.dst, relation=link.relation))
            frontier = next_frontier
        slugs = await self.projects.get_many([n.project_id for n in nodes.values() if n.project_id])
        return ProvenanceGraph(
            root=entity,
            direction=direction,
            depth=depth,
            nodes=[
                self._node(n, 0 if n.id == entity else walk[n.id], slugs) for n in nodes.values()
            ],
            edges=edges,
            truncated=truncated,
        )

    async def _visible(
        self, principal: Principal, nodes: list[NodeRecord], cache: dict[str | None, bool]
    ) -> list[bool]:
        unknown = sorted(
            {n.project_id for n in nodes if n.project_id and n.project_id not in cache}
        )
        if unknown:
            allowed = await self.access.permitted(principal, unknown, Action.PROVENANCE_READ)
            cache.update({pid: pid in allowed for pid in unknown})
        own = [
            cache[n.project_id]
            if n.project_id
            else n.type == "doi" or (n.actor is not None and n.actor == principal.key)
            for n in nodes
        ]
        # someone else's personal node: readable once a DOI was published from it
        return [
            seen or (n.project_id is None and await self._published(n.id, cache))
            for n, seen in zip(nodes, own, strict=True)
        ]

    async def _published(self, node_id: str, cache: dict[str | None, bool]) -> bool:
        """Whether a DOI was published from this personal node: a walk down (what was made
        from it) through personal nodes only reaches a DOI. Bounded like a graph walk."""
        key = f"published:{node_id}"
        if key in cache:
            return cache[key]
        seen = {node_id}
        frontier = [node_id]
        found = False
        for _ in range(2 * self.settings.max_depth):
            if not frontier or found or len(seen) >= self.settings.max_nodes:
                break
            links = await self.store.edges_from(frontier, upward=False)
            others = [link.src for link in links if link.src not in seen]
            fetched = await self.store.nodes(others)
            found = any(
                n.type == "doi" or cache.get(f"published:{n.id}") is True for n in fetched.values()
            )
            frontier = [n.id for n in fetched.values() if n.project_id is None]
            seen.update(frontier)
        cache[key] = found
        return found

    @staticmethod
    def _node(node: NodeRecord, depth: int, projects: dict[str, ProjectRecord]) -> ProvNode:
        project = projects.get(node.project_id) if node.project_id else None
        return ProvNode(
            id=node.id,
            category="activity" if node.category == "activity" else "entity",
            type=node.type,
            project=project.slug if project else None,
            label=node.label,
            actor=node.actor_name,
            started_at=node.started_at,
            ended_at=node.ended_at,
            invalidated_at=node.invalidated_at,
            attributes=node.attributes,
            depth=depth,
        )


# ----------------------------------------------------------------------------- PROV-JSON


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _qname(node_id: str) -> str:
    return node_id if ":" in node_id else f"vre:{node_id}"


def _node_attributes(node: ProvNode) -> dict[str, Any]:
    attrs: dict[str, Any] = {"prov:type": {"$": f"vre:{node.type}", "type": "prov:QUALIFIED_NAME"}}
    if node.label:
        attrs["prov:label"] = node.label
    if node.project:
        attrs["vre:project"] = node.project
    for key, value in node.attributes.items():
        if isinstance(value, str | int | float | bool):
            attrs[f"vre:{key}"] = value
    if node.started_at:
        attrs["prov:startTime"] = _time(node.started_at)
    if node.ended_at:
        attrs["prov:endTime"] = _time(node.ended_at)
    if node.invalidated_at:
        attrs["vre:invalidatedAt"] = _time(node.invalidated_at)
    return attrs


def _relation(edge: ProvEdge, categories: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    source, target = _qname(edge.source), _qname(edge.target)
    if edge.relation == "wasGeneratedBy":
        return "wasGeneratedBy", {"prov:entity": source, "prov:activity": target}
    if categories.get(edge.target) == "activity":  # a run used another run
        return "wasInformedBy", {"prov:informed": source, "prov:informant": target}
    return "used", {"prov:activity": source, "prov:entity": target}


URI_SCHEMES = frozenset({"http", "https", "ivo", "urn", "ftp"})


def to_prov_json(graph: ProvenanceGraph, base_url: str) -> dict[str, Any]:
    """The graph as a W3C PROV-JSON document (entities, activities, agents, relations)."""
    prefixes = {"vre": PROV_NS, "doi": "https://doi.org/"}
    sections: dict[str, dict[str, Any]] = {
        name: {}
        for name in (
            "entity",
            "activity",
            "agent",
            "used",
            "wasGeneratedBy",
            "wasInformedBy",
            "wasAssociatedWith",
        )
    }
    for node in graph.nodes:
        prefix = id_type(node.id)
        # ids that are URIs already (a VO service's ivo://…, a web page's https://…) expand
        # to themselves; the VRE's own kinds (did:, run:, …) to pages of this gateway
        namespace = (
            f"{prefix}:"
            if prefix in URI_SCHEMES
            else f"{base_url.rstrip('/')}/provenance/id/{prefix}/"
        )
        prefixes.setdefault(prefix, namespace)
        sections[node.category][_qname(node.id)] = _node_attributes(node)
        if node.category == "activity" and node.actor:
            agent = f"vre:user/{node.actor}"
            sections["agent"][agent] = {
                "prov:type": {"$": "prov:Person", "type": "prov:QUALIFIED_NAME"},
                "prov:label": node.actor,
            }
            associations = sections["wasAssociatedWith"]
            associations[f"_:assoc{len(associations)}"] = {
                "prov:activity": _qname(node.id),
                "prov:agent": agent,
            }
    categories = {n.id: n.category for n in graph.nodes}
    for edge in graph.edges:
        name, relation = _relation(edge, categories)
        sections[name][f"_:{name}{len(sections[name])}"] = relation
    return {"prefix": prefixes, **{k: v for k, v in sections.items() if v}}
