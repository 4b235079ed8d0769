"""Routes of VO services: the configured ones, their tables, registry discovery, search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_ivoa.config import ServiceType
from vre_ivoa.handlers.deps import CatalogDep
from vre_ivoa.models import RegistryResults, VoServiceDetail, VoServiceList, VoTableList

router = APIRouter(tags=["vo services"])


@router.get(
    "/services",
    summary="VO services offered",
    description="The TAP, cone search (SCS) and SIA v2 services this deployment offers "
    "(configured by the operator).",
    response_model=VoServiceList,
    responses=problem_responses(401),
)
async def list_services(*, _: CurrentUser, catalog: CatalogDep) -> VoServiceList:
    return VoServiceList(items=catalog.services())


@router.get(
    "/services/{name}",
    summary="A VO service and its capabilities",
    description="The service with its VOSI capabilities (protocols, ADQL versions, upload "
    "methods, output formats), cached. A service that does not answer is still listed, "
    "with `capabilities_error` saying why.",
    response_model=VoServiceDetail,
    responses=problem_responses(401, 404),
)
async def get_service(*, name: str, _: CurrentUser, catalog: CatalogDep) -> VoServiceDetail:
    return await catalog.detail(name)


@router.get(
    "/services/{name}/tables",
    summary="Tables of a TAP service",
    description="The service's tables and columns (VOSI tables, cached); `q` keeps the tables "
    "whose name or description contains every word.",
    response_model=VoTableList,
    responses=problem_responses(401, 404, 502, 503, 504),
)
async def list_tables(
    *,
    name: str,
    q: Annotated[str | None, Query(max_length=200)] = None,
    _: CurrentUser,
    catalog: CatalogDep,
) -> VoTableList:
    return await catalog.tables(name, q)


@router.get(
    "/registry",
    summary="Discover VO services in the IVOA registry",
    description="Search the configured IVOA registry (RegTAP) by keywords, service type "
    "(tap, scs, sia2) and waveband (radio, millimeter, infrared, optical, uv, euv, x-ray, "
    "gamma-ray, neutrino, …). Every constraint must match.",
    response_model=RegistryResults,
    responses=problem_responses(401, 404, 422, 502, 503, 504),
)
async def discover(
    *,
    q: Annotated[str | None, Query(max_length=200, description="Keywords.")] = None,
    service_type: ServiceType | None = None,
    waveband: Annotated[str | None, Query(pattern=r"^[a-z-]{2,30}$")] = None,
    limit: Annotated[int | None, Query(gt=0, le=500)] = None,
    _: CurrentUser,
    catalog: CatalogDep,
) -> RegistryResults:
    items = await catalog.discover(
        keywords=(q or "").split()[:10],
        service_type=service_type,
        waveband=waveband,
        limit=limit,
    )
    return RegistryResults(items=items)


@router.get(
    "/search",
    summary="Search VO services and tables",
    description="Configured VO services and their tables whose name, title or description "
    "contains every word of `q` (the source of the gateway's unified search).",
    responses=problem_responses(401),
)
async def search(
    *,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    size: Annotated[int, Query(gt=0, le=100)] = 20,
    _: CurrentUser,
    catalog: CatalogDep,
) -> dict[str, list[dict[str, Any]]]:
    return {"items": await catalog.search(q, size)}
