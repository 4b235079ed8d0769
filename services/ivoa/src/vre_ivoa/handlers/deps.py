"""FastAPI dependencies of the ivoa service: the factory and its services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vre_ivoa.factory import Factory
from vre_ivoa.services.catalog import ServiceCatalog
from vre_ivoa.services.queries import QueryService


async def get_factory(request: Request) -> Factory:
    """The app's factory (built by the lifespan)."""
    factory: Factory = request.app.state.factory
    return factory


FactoryDep = Annotated[Factory, Depends(get_factory)]


async def catalog(factory: FactoryDep) -> ServiceCatalog:
    """The VO service catalog."""
    return factory.catalog


async def query_service(factory: FactoryDep) -> QueryService:
    """The queries service."""
    return factory.query_service()


CatalogDep = Annotated[ServiceCatalog, Depends(catalog)]
QueryServiceDep = Annotated[QueryService, Depends(query_service)]
