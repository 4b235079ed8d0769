"""FastAPI dependencies of the ivoa service: the factory and its services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vre_common.deps import CurrentUser, bearer_token
from vre_common.errors import InvalidTokenError
from vre_ivoa.factory import Factory
from vre_ivoa.services.catalog import ServiceCatalog
from vre_ivoa.services.queries import QueryService


def own_path(request: Request, name: str, **params: str) -> str:
    """The path of one of this app's routes, also when the gateway mounts it under /ivoa."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + str(request.app.url_path_for(name, **params))


def get_factory(request: Request) -> Factory:
    """The app's factory (built by the lifespan)."""
    factory: Factory = request.app.state.factory
    return factory


FactoryDep = Annotated[Factory, Depends(get_factory)]


async def caller_token(request: Request, _: CurrentUser) -> str:
    """The caller's bearer token, to act for them at the datalake."""
    token = bearer_token(request)
    if not token:
        raise InvalidTokenError("missing bearer token")
    return token


BearerToken = Annotated[str, Depends(caller_token)]


def catalog(factory: FactoryDep) -> ServiceCatalog:
    """The VO service catalog."""
    return factory.catalog


def query_service(factory: FactoryDep) -> QueryService:
    """The queries service."""
    return factory.query_service()


CatalogDep = Annotated[ServiceCatalog, Depends(catalog)]
QueryServiceDep = Annotated[QueryService, Depends(query_service)]
