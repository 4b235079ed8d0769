"""Routes of the caller's Zenodo token: register, inspect, forget."""

from __future__ import annotations

from fastapi import APIRouter, Response

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses
from vre_zenodo.handlers.deps import CredentialServiceDep
from vre_zenodo.models import CredentialsIn, CredentialsStatus

router = APIRouter(prefix="/credentials", tags=["credentials"])


@router.put(
    "",
    summary="Register your Zenodo token",
    description="Store your personal Zenodo access token (scopes `deposit:write` and "
    "`deposit:actions`), encrypted. Zenodo is asked to accept it first (a token Zenodo "
    "refuses is a 422). Replaces a token registered before. The token is never returned "
    "or logged.",
    response_model=CredentialsStatus,
    responses=problem_responses(401, 422, 502, 503, 504),
)
async def put_credentials(
    *, body: CredentialsIn, user: CurrentUser, credentials: CredentialServiceDep
) -> CredentialsStatus:
    return await credentials.register(user, body.token.get_secret_value())


@router.get(
    "",
    summary="Whether you have a Zenodo token",
    description="Only whether a token is registered, for which Zenodo, and when — never the token.",
    response_model=CredentialsStatus,
    responses=problem_responses(401),
)
async def get_credentials(
    *, user: CurrentUser, credentials: CredentialServiceDep
) -> CredentialsStatus:
    return await credentials.status(user)


@router.delete(
    "",
    summary="Forget your Zenodo token",
    description="Delete your stored token (no error if there was none).",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401),
)
async def delete_credentials(*, user: CurrentUser, credentials: CredentialServiceDep) -> Response:
    await credentials.forget(user)
    return Response(status_code=204)
