"""The caller's REANA access tokens: register (checked with REANA), list, forget."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_workflows.handlers.deps import CredentialServiceDep
from vre_workflows.models import ReanaCredentials, ReanaCredentialsIn, ReanaCredentialsList

router = APIRouter(prefix="/credentials", tags=["credentials"])


@router.put(
    "/reana",
    summary="Register a REANA token",
    description=(
        "Checks the token with the REANA server (`GET /api/you`) and stores it encrypted. It "
        "is used for the caller's REANA runs and never returned or logged."
    ),
    response_model=ReanaCredentials,
    responses=problem_responses(401, 403, 422, 502, 503, 504),
)
async def put_reana_credentials(
    body: ReanaCredentialsIn, user: CurrentUser, credentials: CredentialServiceDep
) -> ReanaCredentials:
    return await credentials.register(user, body)


@router.get(
    "/reana",
    summary="List registered REANA tokens",
    description="The REANA servers the caller has a token for (never the tokens).",
    response_model=ReanaCredentialsList,
    responses=problem_responses(401),
)
async def list_reana_credentials(
    user: CurrentUser, credentials: CredentialServiceDep
) -> ReanaCredentialsList:
    return await credentials.list_all(user)


@router.delete(
    "/reana",
    status_code=204,
    summary="Forget a REANA token",
    description="Deletes the caller's stored token for a server (default server if omitted).",
    response_class=Response,
    responses=problem_responses(401, 404),
)
async def delete_reana_credentials(
    user: CurrentUser,
    credentials: CredentialServiceDep,
    server: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    await credentials.delete(user, server)
    return Response(status_code=204)
