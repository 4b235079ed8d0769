"""Dependencies of the catalogue's routes: the request's session and services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vre_catalogue.factory import Factory
from vre_catalogue.services.harvest import HarvestService
from vre_catalogue.services.software import SoftwareService
from vre_common.deps import request_token


def get_factory(request: Request) -> Factory:
    """The factory of the app handling the request."""
    factory: Factory = request.app.state.factory
    return factory


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, committed before the response is sent."""
    async with get_factory(request).db.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


async def software_service(request: Request, session: SessionDep) -> SoftwareService:
    """The software service for this request (as the caller, for project-owned entries)."""
    return get_factory(request).software_service(session, request_token(request))


async def harvest_service(request: Request) -> HarvestService:
    """The (app-wide) harvest service."""
    return get_factory(request).harvest


SoftwareServiceDep = Annotated[SoftwareService, Depends(software_service)]
HarvestServiceDep = Annotated[HarvestService, Depends(harvest_service)]
