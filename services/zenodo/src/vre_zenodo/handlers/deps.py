"""FastAPI dependencies of the zenodo service: the factory, a session, services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.deps import CurrentUser, bearer_token
from vre_common.errors import InvalidTokenError
from vre_zenodo.factory import Factory
from vre_zenodo.services.credentials import CredentialService
from vre_zenodo.services.depositions import DepositionService
from vre_zenodo.services.imports import ImportService
from vre_zenodo.services.records import RecordService


def own_path(request: Request, name: str, **params: str) -> str:
    """The path of one of this app's routes, also when the gateway mounts it under /zenodo.

    (``request.url_for`` looks names up in the outermost app, which does not know ours.)
    """
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + str(request.app.url_path_for(name, **params))


def get_factory(request: Request) -> Factory:
    """The app's factory (built by the lifespan)."""
    factory: Factory = request.app.state.factory
    return factory


FactoryDep = Annotated[Factory, Depends(get_factory)]


async def db_session(factory: FactoryDep) -> AsyncIterator[AsyncSession]:
    """The request's session: committed before the response is sent, rolled back on error."""
    async with factory.unit() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


async def caller_token(request: Request, _: CurrentUser) -> str:
    """The caller's bearer token, to act for them at the other VRE services."""
    token = bearer_token(request)
    if not token:
        raise InvalidTokenError("missing bearer token")
    return token


BearerToken = Annotated[str, Depends(caller_token)]


def credential_service(factory: FactoryDep, session: SessionDep) -> CredentialService:
    """The credentials service of this request."""
    return factory.credential_service(session)


def import_service(factory: FactoryDep, session: SessionDep) -> ImportService:
    """The imports service of this request."""
    return factory.import_service(session)


def deposition_service(factory: FactoryDep, session: SessionDep) -> DepositionService:
    """The depositions service of this request."""
    return factory.deposition_service(session)


def record_service(factory: FactoryDep) -> RecordService:
    """The records service."""
    return factory.record_service()


CredentialServiceDep = Annotated[CredentialService, Depends(credential_service)]
ImportServiceDep = Annotated[ImportService, Depends(import_service)]
DepositionServiceDep = Annotated[DepositionService, Depends(deposition_service)]
RecordServiceDep = Annotated[RecordService, Depends(record_service)]
