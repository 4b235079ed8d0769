"""Routes of software entries: registration, reading, editing, export, search, environments."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from vre_catalogue.handlers.deps import SoftwareServiceDep
from vre_catalogue.models import (
    CODEMETA_EXAMPLE,
    Environment,
    EnvironmentCreate,
    EnvironmentList,
    FacetName,
    Registration,
    SearchQuery,
    SearchResult,
    Software,
    SoftwareVersion,
    VersionList,
    ZenodoExport,
)
from vre_catalogue.services.codemeta import json_syntax_issue
from vre_common.deps import CurrentUser
from vre_common.errors import MalformedBodyError
from vre_common.problems import json_syntax_error, problem_responses


class CodemetaRoute(APIRoute):
    """A route whose JSON body is a codemeta.json: a syntax error in it answers vre_common's
    400 malformed-body problem (line, column, reason, excerpt), whose error also says what to
    write instead (``fix``) — the shared handler alone cannot know codemeta."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                syntax = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
                if syntax is None or not isinstance(exc.body, str | bytes):
                    raise
                body = exc.body
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                loc = syntax.get("loc", ())
                position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
                reason = str((syntax.get("ctx") or {}).get("error", "invalid JSON"))
                shared = json_syntax_error(text, position, reason)
                issue = json_syntax_issue(text, position, reason)
                raise MalformedBodyError(
                    shared.detail,
                    errors=[issue.model_dump(exclude_none=True)],
                    extra={**shared.extra, "fix": issue.fix},
                ) from exc

        return route_handler


router = APIRouter(prefix="/software", tags=["software"], route_class=CodemetaRoute)

# Ids are database BIGINTs: a larger number cannot name a row (and would overflow the driver).
MAX_ID = 2**63 - 1
SoftwareId = Annotated[int, Path(ge=1, le=MAX_ID, description="The entry's id.")]
VersionPath = Annotated[str, Path(min_length=1, max_length=100, description="A release.")]
VersionQuery = Annotated[
    str | None, Query(max_length=100, description="A release (default: the latest).")
]
Facet = Annotated[list[str] | None, Query(max_length=20)]
LD_JSON = "application/ld+json"

_codemeta_body = Body(
    description="A codemeta.json document (JSON-LD, codemeta 2.0 or 3.0 context).",
    openapi_examples={
        "codemeta 3.0": {"summary": "A complete OSSR entry", "value": CODEMETA_EXAMPLE},
        "codemeta 2.0": {
            "summary": "The same in the 2.0 context",
            "value": {
                **CODEMETA_EXAMPLE,
                "@context": "https://doi.org/10.5063/schema/codemeta-2.0",
            },
        },
    },
)
_patch_body = Body(
    description="A JSON merge patch (RFC 7396) of the release's codemeta.json; null removes a key.",
    openapi_examples={"new description": {"value": {"description": "Gamma-ray astronomy."}}},
    media_type="application/merge-patch+json",
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a codemeta.json",
    description=(
        "Validates a codemeta.json against the OSSR rules and stores it as a new entry, or as a "
        "new release of the entry with the same DOI or name (registrant or curators only). "
        "Every problem is reported at once in one 422 problem (`errors`: loc, pointer (RFC 6901), "
        "msg, type, fix: what to write instead; a JSON syntax error gives line and column); "
        "what the OSSR only recommends comes back as `warnings`. With `project=<slug>` a new entry "
        "belongs to that Science Project (its maintainers and owners may register and edit it: "
        "`catalogue.write`; 404 for a project you cannot see)."
    ),
    response_model=Registration,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def register_software(
    document: Annotated[dict[str, Any], _codemeta_body],
    user: CurrentUser,
    software: SoftwareServiceDep,
    response: Response,
    project: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
            description="The Science Project (slug) that owns a new entry.",
        ),
    ] = None,
) -> Registration:
    registration = await software.register(user, document, project=project)
    response.headers["Location"] = f"software/{registration.software.id}"
    return registration


@router.get(
    "/search",
    summary="Search software",
    description=(
        "Full-text search over name, description, keywords and authors, ranked by relevance "
        "(each word matches as a word prefix, English stemming). Facet filters may repeat: "
        "every given value must match. Facet counts cover the whole filtered result. Public."
    ),
    response_model=SearchResult,
    responses=problem_responses(422),
)
async def search_software(
    *,
    software: SoftwareServiceDep,
    q: Annotated[str | None, Query(max_length=500, description="Words to find.")] = None,
    keyword: Facet = None,
    license: Facet = None,
    language: Facet = None,
    platform: Facet = None,
    community: Facet = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResult:
    given: dict[FacetName, list[str] | None] = {
        "keyword": keyword,
        "license": license,
        "language": language,
        "platform": platform,
        "community": community,
    }
    filters = {name: values for name, values in given.items() if values}
    return await software.search(SearchQuery(q=q, filters=filters, page=page, size=size))


@router.get(
    "/{software_id:int}",
    summary="Get a software entry",
    description="An entry, described by its latest release. Public.",
    response_model=Software,
    responses=problem_responses(404),
)
async def get_software(software_id: SoftwareId, software: SoftwareServiceDep) -> Software:
    return await software.get(software_id)


@router.patch(
    "/{software_id:int}",
    summary="Edit a release's codemeta.json",
    description=(
        "Applies a JSON merge patch to the codemeta.json of the latest release (or of "
        "`version`); the result is validated as a whole. Registrant or curators only (a "
        "project's entry: its maintainers and owners)."
    ),
    response_model=Registration,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_software(
    software_id: SoftwareId,
    patch: Annotated[dict[str, Any], _patch_body],
    user: CurrentUser,
    software: SoftwareServiceDep,
    version: VersionQuery = None,
) -> Registration:
    return await software.update(user, software_id, patch, version)


@router.delete(
    "/{software_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a software entry",
    description="Deletes the entry and every release. Registrant or curators only (a "
    "project's entry: its maintainers and owners).",
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_software(
    software_id: SoftwareId, user: CurrentUser, software: SoftwareServiceDep
) -> Response:
    await software.delete(user, software_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{software_id:int}/versions",
    summary="List releases",
    description="Every release of an entry, newest first, with its environments. Public.",
    response_model=VersionList,
    responses=problem_responses(404),
)
async def list_versions(software_id: SoftwareId, software: SoftwareServiceDep) -> VersionList:
    return VersionList(items=await software.versions(software_id))


@router.get(
    "/{software_id:int}/versions/{version}",
    summary="Get a release",
    description="One release of an entry. Public.",
    response_model=SoftwareVersion,
    responses=problem_responses(404),
)
async def get_version(
    software_id: SoftwareId, version: VersionPath, software: SoftwareServiceDep
) -> SoftwareVersion:
    return await software.version(software_id, version)


@router.delete(
    "/{software_id:int}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a release",
    description="Deletes one release; the entry goes with its last one. Registrant or "
    "curators (a project's entry: its maintainers and owners).",
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_version(
    software_id: SoftwareId, version: VersionPath, user: CurrentUser, software: SoftwareServiceDep
) -> Response:
    await software.delete_version(user, software_id, version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{software_id:int}/codemeta",
    summary="Export as codemeta.json",
    description="The codemeta.json of the latest release (or of `version`), as registered.",
    response_model=dict[str, Any],
    responses={
        200: {"content": {LD_JSON: {"schema": {"type": "object"}, "example": CODEMETA_EXAMPLE}}},
        **problem_responses(404),
    },
)
async def export_codemeta(
    software_id: SoftwareId, software: SoftwareServiceDep, version: VersionQuery = None
) -> JSONResponse:
    document = await software.codemeta(software_id, version)
    return JSONResponse(document, media_type=LD_JSON)


@router.get(
    "/{software_id:int}/zenodo",
    summary="Export as Zenodo metadata",
    description=(
        "The Zenodo deposit metadata of the latest release (or of `version`) by the OSSR "
        "crosswalk: name→title, softwareVersion→version, author→creators, "
        "datePublished→publication_date, maintainer→contributors (ContactPerson), "
        "contributor→contributors (Other), readme→isDocumentedBy, "
        "codeRepository→isDerivedFrom, with the ESCAPE grant."
    ),
    response_model=ZenodoExport,
    response_model_exclude_none=True,
    responses=problem_responses(404),
)
async def export_zenodo(
    software_id: SoftwareId, software: SoftwareServiceDep, version: VersionQuery = None
) -> ZenodoExport:
    return await software.zenodo(software_id, version)


@router.post(
    "/{software_id:int}/versions/{version}/environments",
    status_code=status.HTTP_201_CREATED,
    summary="Attach an environment",
    description=(
        "Attaches a container image (or conda/pip environment) in which this release runs, "
        "for workflows to use. Registrant or curators only (a project's entry: its "
        "maintainers and owners)."
    ),
    response_model=Environment,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_environment(
    software_id: SoftwareId,
    version: VersionPath,
    environment: EnvironmentCreate,
    user: CurrentUser,
    software: SoftwareServiceDep,
) -> Environment:
    return await software.add_environment(user, software_id, version, environment)


@router.get(
    "/{software_id:int}/environments",
    summary="List environments",
    description="Container images and environments of an entry's releases (or of `version`).",
    response_model=EnvironmentList,
    responses=problem_responses(404),
)
async def list_environments(
    software_id: SoftwareId, software: SoftwareServiceDep, version: VersionQuery = None
) -> EnvironmentList:
    return EnvironmentList(items=await software.environments(software_id, version))


@router.delete(
    "/{software_id:int}/environments/{environment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Detach an environment",
    description="Registrant or curators only (a project's entry: its maintainers and owners).",
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_environment(
    software_id: SoftwareId,
    environment_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    user: CurrentUser,
    software: SoftwareServiceDep,
) -> Response:
    await software.delete_environment(user, software_id, environment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
