"""Provenance: services post events; users walk the graph or export it as PROV-JSON."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_common.provenance.events import EventBatch, IngestResult
from vre_common.provenance.ids import ENTITY_QUERY_PATTERN
from vre_gateway.handlers.deps import ServicesDep, get_factory
from vre_gateway.models.provenance import Direction, ProvenanceGraph
from vre_gateway.services.provenance import to_prov_json

router = APIRouter(prefix="/provenance", tags=["provenance"])


@router.post(
    "/events",
    summary="Report provenance events (services)",
    description="Internal: the services' outbox relays post what they did. Idempotent by "
    "event id, so a redelivered event is counted as a duplicate and changes nothing.",
    responses=problem_responses(401, 403, 422),
)
async def post_events(body: EventBatch, user: CurrentUser, services: ServicesDep) -> IngestResult:
    services.provenance.check_writer(user)
    return await services.provenance.ingest(body.events)


@router.get(
    "",
    summary="Where did this come from / what was derived from it",
    description="Walk the provenance graph from an entity (`did:<scope>:<name>`, "
    "`run:<id>`, `doi:10.…`) `up` (its sources) or `down` (what used it), `depth` "
    "activities far. Only entities of projects the caller may read are shown, the caller's "
    "own personal uploads, runs and publications (outside every project), the personal "
    "chain up to a published DOI (readable by anybody signed in), and DOIs. "
    "`format=prov-json` answers a W3C PROV-JSON document.",
    response_model=ProvenanceGraph,
    responses={
        **problem_responses(401, 404, 422),
        200: {
            "content": {"application/json": {}},
            "description": "The graph (or a PROV-JSON document with format=prov-json).",
        },
    },
)
async def get_provenance(
    *,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    entity: Annotated[
        str,
        Query(
            min_length=3,
            max_length=600,
            json_schema_extra={"pattern": ENTITY_QUERY_PATTERN},
        ),
    ],
    direction: Direction = Direction.UP,
    depth: Annotated[int, Query(ge=1, le=100)] = 5,
    format: Literal["json", "prov-json"] = "json",
) -> ProvenanceGraph | JSONResponse:
    graph = await services.provenance.graph(user, entity, direction, depth)
    if format == "prov-json":
        base_url = get_factory(request).settings.base_url
        return JSONResponse(to_prov_json(graph, base_url))
    return graph
