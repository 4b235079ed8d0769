"""FastAPI dependencies of the gateway's routes: its factory, the session, the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.auth import Principal
from vre_common.deps import CurrentUser
from vre_gateway.factory import Factory, Services


def get_factory(request: Request) -> Factory:
    """The gateway's composition root (built by create_app)."""
    factory: Factory = request.app.state.factory
    return factory


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_factory(request).database.transaction() as session:
        yield session


# scope="function": commit before the response is sent, so a client never reads stale data
# and a failed commit is the request's error.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


async def get_services(request: Request, session: SessionDep) -> Services:
    """The domain services for this request."""
    return get_factory(request).services(session)


ServicesDep = Annotated[Services, Depends(get_services)]


async def known_user(request: Request, user: CurrentUser) -> Principal:
    """The caller, remembered so members can be added by user name."""
    await get_factory(request).remember(user)
    return user


KnownUser = Annotated[Principal, Depends(known_user)]
