"""FastAPI dependencies shared by every service: the caller, its token, the project policy,
paths. The validator and the policy are the app's :class:`vre_common.link.GatewayLink`'s."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vre_common.auth import Principal, TokenValidator
from vre_common.errors import BadRequestError, InvalidTokenError
from vre_common.link import link_of
from vre_common.policy import Policy, RequestPolicy

_bearer = HTTPBearer(auto_error=False, description="An IAM access token (JWT).")


def get_validator(request: Request) -> TokenValidator:
    """The token validator of the app handling the request (its link's)."""
    return link_of(request.app).validator


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


async def caller_token(request: Request, _: CurrentUser) -> str:
    """The authenticated caller's bearer token, to act for them at the other VRE services."""
    token = bearer_token(request)
    if not token:
        raise InvalidTokenError("missing bearer token")
    return token


BearerToken = Annotated[str, Depends(caller_token)]


def project_policy(request: Request) -> Policy | None:
    """The app's project policy (its link's); None: no gateway to ask about projects."""
    return link_of(request.app).policy


def request_token(request: Request) -> str | None:
    """The request's bearer token, validated or not yet (anonymous routes): to ask the
    gateway about projects as the caller."""
    token = bearer_token(request)
    if token is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return token


def get_policy(request: Request) -> RequestPolicy:
    """The app's project policy bound to the request's bearer token (an app without one is a
    programming error)."""
    policy = project_policy(request)
    if policy is None:
        raise RuntimeError(f"{request.app.title} has no project policy (its GatewayLink)")
    return RequestPolicy(policy, request_token(request))


PolicyDep = Annotated[RequestPolicy, Depends(get_policy)]


def own_path(request: Request, name: str, **params: str) -> str:
    """The path of one of this app's routes, also when the gateway mounts it under a prefix.

    (``request.url_for`` looks names up in the outermost app, which does not know ours.)
    """
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + str(request.app.url_path_for(name, **params))
