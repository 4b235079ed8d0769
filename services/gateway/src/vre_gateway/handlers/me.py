"""GET /me: who the token says you are."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vre_common.deps import CurrentUser
from vre_common.problems import problem_responses

router = APIRouter(tags=["identity"])


class Me(BaseModel):
    """The caller, as the validated token describes them."""

    subject: str = Field(examples=["5d8ebf9e-ac26-5370-b4a4-5ef8c39b32dc"])
    issuer: str = Field(examples=["https://iam-escape.cloud.cnaf.infn.it/"])
    username: str = Field(examples=["alice"])
    email: str | None = None
    name: str | None = None
    groups: list[str] = Field(examples=[["/escape", "/escape/cta"]])
    scopes: list[str] = Field(examples=[["openid", "storage.read:/"]])
    expires_in: int = Field(description="Seconds until the token expires.", examples=[3542])


@router.get(
    "/me",
    summary="Who am I",
    description="The identity, groups, scopes and remaining lifetime of the caller's token.",
    responses=problem_responses(401, 503),
)
async def me(user: CurrentUser) -> Me:
    return Me(
        subject=user.subject,
        issuer=user.issuer,
        username=user.username,
        email=user.email,
        name=user.name,
        groups=user.groups,
        scopes=user.scopes,
        expires_in=user.expires_in(),
    )
