"""FastAPI dependencies shared by every service: the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vre_common.auth import Principal, TokenValidator
from vre_common.errors import BadRequestError, InvalidTokenError

_bearer = HTTPBearer(auto_error=False, description="An IAM access token (JWT).")


def get_validator(request: Request) -> TokenValidator:
    """The token validator of the app handling the request."""
    validator: TokenValidator = request.app.state.validator
    return validator


def bearer_token(request: Request) -> str | None:
    """The raw bearer token of the request, if any (to act for the caller downstream)."""
    token: str | None = getattr(request.state, "bearer_token", None)
    return token


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Validate the request's bearer token (every service does: defence in depth)."""
    if "access_token" in request.query_params:
        raise BadRequestError(
            "tokens are accepted only in the Authorization header, never in the URL"
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidTokenError("missing bearer token")
    principal = await get_validator(request).validate(credentials.credentials)
    request.state.bearer_token = credentials.credentials
    request.state.principal = principal
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The caller if a bearer token is given; None for anonymous requests."""
    if "access_token" in request.query_params:
        raise BadRequestError(
            "tokens are accepted only in the Authorization header, never in the URL"
        )
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidTokenError("malformed Authorization header")
    principal = await get_validator(request).validate(token.strip())
    request.state.bearer_token = token.strip()
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
