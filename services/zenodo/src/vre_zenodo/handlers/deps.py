"""FastAPI dependencies of the zenodo service: the factory, a session, services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vre_zenodo.factory import Factory
from vre_zenodo.services.credentials import CredentialService
from vre_zenodo.services.depositions import DepositionService
from vre_zenodo.services.imports import ImportService
from vre_zenodo.services.records import RecordService


async def get_factory(request: Request) -> Factory:
    """The app's factory (built by the lifespan)."""
    factory: Factory = request.app.state.factory
    return factory


FactoryDep = Annotated[Factory, Depends(get_factory)]


async def db_session(factory: FactoryDep) -> AsyncIterator[AsyncSession]:
    """The request's session: committed before the response is sent, rolled back on error."""
    async with factory.unit() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


async def credential_service(factory: FactoryDep, session: SessionDep) -> CredentialService:
    """The credentials service of this request."""
    return factory.credential_service(session)


async def import_service(factory: FactoryDep, session: SessionDep) -> ImportService:
    """The imports service of this request."""
    return factory.import_service(session)


async def deposition_service(factory: FactoryDep, session: SessionDep) -> DepositionService:
    """The depositions service of this request."""
    return factory.deposition_service(session)


async def record_service(factory: FactoryDep) -> RecordService:
    """The records service."""
    return factory.record_service()


CredentialServiceDep = Annotated[CredentialService, Depends(credential_service)]
ImportServiceDep = Annotated[ImportService, Depends(import_service)]
DepositionServiceDep = Annotated[DepositionService, Depends(deposition_service)]
RecordServiceDep = Annotated[RecordService, Depends(record_service)]
