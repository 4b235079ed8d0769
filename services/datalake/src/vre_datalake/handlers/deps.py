"""Dependencies of the handlers: the caller's Rucio account and the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vre_common.deps import CurrentUser, bearer_token
from vre_datalake.backends.base import Actor
from vre_datalake.factory import Factory
from vre_datalake.services.catalogue import CatalogueService
from vre_datalake.services.dids import DidService
from vre_datalake.services.files import FileService
from vre_datalake.services.resolve import ResolveService
from vre_datalake.services.rules import RuleService, UsageService
from vre_datalake.services.scopes import ScopeService
from vre_datalake.services.uploads import UploadService

NDJSON = "application/x-ndjson"


def get_factory(request: Request) -> Factory:
    """The app's object graph."""
    factory: Factory = request.app.state.factory
    return factory


async def _factory(request: Request) -> Factory:
    return get_factory(request)


FactoryDep = Annotated[Factory, Depends(_factory)]


async def current_actor(request: Request, user: CurrentUser, factory: FactoryDep) -> Actor:
    """The Rucio account the caller acts as (created on first use in service mode)."""
    return await factory.backend.bind(user, bearer_token(request))


def wants_ndjson(request: Request) -> bool:
    """True if the client asked for a streamed NDJSON answer."""
    accept = request.headers.get("accept", "")
    return NDJSON in accept or "application/x-json-stream" in accept


async def _catalogue(request: Request) -> CatalogueService:
    return get_factory(request).catalogue


async def _dids(request: Request) -> DidService:
    return get_factory(request).dids


async def _files(request: Request) -> FileService:
    return get_factory(request).files


async def _uploads(request: Request) -> UploadService:
    return get_factory(request).uploads


async def _rules(request: Request) -> RuleService:
    return get_factory(request).rules


async def _usage(request: Request) -> UsageService:
    return get_factory(request).usage


async def _resolver(request: Request) -> ResolveService:
    return get_factory(request).resolver


async def _scopes(request: Request) -> ScopeService:
    return get_factory(request).scopes


CurrentActor = Annotated[Actor, Depends(current_actor)]
CatalogueDep = Annotated[CatalogueService, Depends(_catalogue)]
DidServiceDep = Annotated[DidService, Depends(_dids)]
FileServiceDep = Annotated[FileService, Depends(_files)]
UploadServiceDep = Annotated[UploadService, Depends(_uploads)]
RuleServiceDep = Annotated[RuleService, Depends(_rules)]
UsageServiceDep = Annotated[UsageService, Depends(_usage)]
ResolveServiceDep = Annotated[ResolveService, Depends(_resolver)]
ScopeServiceDep = Annotated[ScopeService, Depends(_scopes)]
