"""FastAPI dependencies of the workflows service: the session and the services on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.deps import bearer_token
from vre_workflows.factory import Factory
from vre_workflows.services.credentials import CredentialService
from vre_workflows.services.files import RunFiles
from vre_workflows.services.runs import RunService
from vre_workflows.services.validation import ValidationService
from vre_workflows.storage.credentials import CredentialStore


def get_factory(request: Request) -> Factory:
    """The app's composition root (built once, kept by the lifespan)."""
    factory: Factory = request.app.state.factory
    return factory


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, committed when the handler has returned.

    Entered as a context manager (not ``async for``) so that an error raised by the handler
    reaches ``Database.session`` at once and rolls the transaction back there and then.
    """
    async with get_factory(request).db.transaction() as session:
        yield session


# scope="function": commit before the response is sent, so that a client that got 201 for a
# run can read it at once (with the default scope the commit came after the response).
Session = Annotated[AsyncSession, Depends(db_session, scope="function")]


async def _credential_service(request: Request, session: Session) -> CredentialService:
    built = get_factory(request)
    return CredentialService(
        store=CredentialStore(session), cipher=built.cipher, servers=built.servers
    )


async def _run_service(request: Request, session: Session) -> RunService:
    built = get_factory(request)
    return RunService(
        session=session,
        access=built.access,
        token=bearer_token(request),
        validation=built.validation,
        manager=built.manager,
        backends=built.backends,
        datalake=built.datalake,
        data_dir=built.settings.data_dir,
        max_inline_bytes=built.settings.max_inline_file_bytes,
        max_upload_bytes=built.settings.max_upload_bytes,
    )


async def _validation_service(request: Request) -> ValidationService:
    return get_factory(request).validation


async def _run_files(request: Request) -> RunFiles:
    return get_factory(request).files


RunServiceDep = Annotated[RunService, Depends(_run_service)]
ValidationServiceDep = Annotated[ValidationService, Depends(_validation_service)]
RunFilesDep = Annotated[RunFiles, Depends(_run_files)]
CredentialServiceDep = Annotated[CredentialService, Depends(_credential_service)]
