"""Merge the services' OpenAPI documents into the gateway's one document.

Each service's paths go under ``/<service>``, its operationIds and tags get the service
name as prefix, and its component schemas are renamed ``<Service><Name>`` unless an
identical schema of that name already exists (``Problem`` is shared by all).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from vre_common.problems import PROBLEM_JSON, Problem

REF_PREFIX = "#/components/schemas/"
_PROBLEM_REF = {"$ref": REF_PREFIX + "Problem"}

# What every operation can answer because of the gateway in front of it (its middlewares).
GATEWAY_RESPONSES: dict[str, str] = {
    "414": "The query string is longer than the gateway accepts (max_query_bytes)",
    "429": "Too many requests from this caller; retry after Retry-After seconds",
}
BODY_RESPONSES: dict[str, str] = {
    "413": "The body is larger than the gateway accepts (max_body_bytes)",
}

_BODY = "$response.body#"


def _from_body(**params: str) -> dict[str, str]:
    return {name: f"{_BODY}/{pointer}" for name, pointer in params.items()}


# OpenAPI links: from each operation that creates something to the operations that use what it
# returns (so generated clients and stateful tests can follow an upload to its download, a run
# to its logs and outputs). creator operationId → [(link name, target operationId, parameters)].
LINKS: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "create_project": [
        (name, target, _from_body(slug="slug"))
        for name, target in (
            ("GetProject", "get_project"),
            ("UpdateProject", "update_project"),
            ("ListMembers", "list_members"),
            ("ListGroups", "list_groups"),
            ("ProjectAudit", "project_audit"),
            ("InviteToProject", "invite"),
        )
    ]
    + [("ProjectData", "datalake_list_dids", _from_body(scope="scope"))],
    "invite": [
        (
            "RevokeInvitation",
            "revoke_invitation",
            {"slug": "$request.path.slug", "invitation_id": f"{_BODY}/id"},
        ),
        ("AcceptInvitation", "accept_invitation", _from_body(invitation_id="id")),
    ],
    "add_member": [
        (
            "ChangeMemberRole",
            "change_member_role",
            {"slug": "$request.path.slug", "member_id": f"{_BODY}/id"},
        ),
        (
            "RemoveMember",
            "remove_member",
            {"slug": "$request.path.slug", "member_id": f"{_BODY}/id"},
        ),
    ],
    "datalake_upload_file": [
        (name, target, _from_body(scope="scope", name="name"))
        for name, target in (
            ("DownloadFile", "datalake_download_file"),
            ("GetDid", "datalake_get_did"),
            ("SetMetadata", "datalake_set_metadata"),
            ("ListReplicas", "datalake_list_replicas"),
        )
    ],
    "datalake_create_did": [
        (name, target, _from_body(scope="scope", name="name"))
        for name, target in (
            ("GetDid", "datalake_get_did"),
            ("AttachDids", "datalake_attach_dids"),
            ("ListContent", "datalake_list_content"),
            ("SetMetadata", "datalake_set_metadata"),
        )
    ],
    "datalake_create_scope": [
        ("ListDids", "datalake_list_dids", _from_body(scope="scope")),
    ],
    "datalake_create_rules": [
        (name, target, _from_body(rule_id="ids/0"))
        for name, target in (
            ("GetRule", "datalake_get_rule"),
            ("UpdateRule", "datalake_update_rule"),
            ("DeleteRule", "datalake_delete_rule"),
        )
    ],
    "workflows_create_run": [
        (name, target, _from_body(run_id="id"))
        for name, target in (
            ("GetRun", "workflows_get_run"),
            ("GetRunLogs", "workflows_get_run_logs"),
            ("ListRunOutputs", "workflows_list_run_outputs"),
            ("CancelRun", "workflows_cancel_run"),
            ("RerunRun", "workflows_rerun_run"),
            ("DeleteRun", "workflows_delete_run"),
        )
    ],
    "catalogue_register_software": [
        (name, target, _from_body(software_id="software/id"))
        for name, target in (
            ("GetSoftware", "catalogue_get_software"),
            ("UpdateSoftware", "catalogue_update_software"),
            ("ListVersions", "catalogue_list_versions"),
            ("ExportCodemeta", "catalogue_export_codemeta"),
            ("ExportZenodo", "catalogue_export_zenodo"),
            ("ListEnvironments", "catalogue_list_environments"),
            ("DeleteSoftware", "catalogue_delete_software"),
        )
    ],
    "catalogue_start_harvest": [
        ("GetHarvest", "catalogue_get_harvest", _from_body(job_id="id")),
    ],
    "zenodo_create_deposition": [
        (name, target, _from_body(deposition_id="id"))
        for name, target in (
            ("GetDeposition", "zenodo_get_deposition"),
            ("UpdateDepositionMetadata", "zenodo_update_deposition_metadata"),
            ("PublishDeposition", "zenodo_publish_deposition"),
            ("DiscardDeposition", "zenodo_discard_deposition"),
        )
    ],
    "zenodo_create_import": [
        ("GetImport", "zenodo_get_import", _from_body(import_id="id")),
    ],
    "ivoa_create_query": [
        ("GetQuery", "ivoa_get_query", _from_body(query_id="id")),
        ("CancelQuery", "ivoa_cancel_query", _from_body(query_id="id")),
    ],
}
LINKS["workflows_rerun_run"] = LINKS["workflows_create_run"]
LINKS["zenodo_create_deposition_version"] = LINKS["zenodo_create_deposition"]


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                name = value[len(REF_PREFIX) :]
                out[key] = REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _rewrite_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _check_unique(service: str, renames: dict[str, str], existing: dict[str, Any]) -> None:
    """Two schemas must never land on one name (one would silently replace the other)."""
    seen: dict[str, str] = {}
    for name, target in renames.items():
        if target in seen or target in existing:
            other = seen.get(target, "an existing schema")
            raise ValueError(
                f"OpenAPI merge: {service}'s schemas {name!r} and {other!r} would both be "
                f"named {target!r}; rename one of the models"
            )
        seen[target] = name


def merge_openapi(gateway: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's own document plus every service's, prefixed. Deterministic order."""
    merged = copy.deepcopy(gateway)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    schemas: dict[str, Any] = merged.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    tags: list[dict[str, Any]] = merged.setdefault("tags", [])
    security_schemes = merged["components"].setdefault("securitySchemes", {})

    for service in sorted(services):
        doc = services[service]
        prefix_name = service.capitalize()
        renames: dict[str, str] = {}
        their_schemas = doc.get("components", {}).get("schemas", {})
        for name, schema in their_schemas.items():
            if name in schemas and json.dumps(schemas[name], sort_keys=True) == json.dumps(
                _rewrite_refs(schema, {}), sort_keys=True
            ):
                continue
            renames[name] = name if name.startswith(prefix_name) else prefix_name + name
        _check_unique(service, renames, schemas)
        for name, schema in their_schemas.items():
            if name in renames:
                schemas[renames[name]] = _rewrite_refs(schema, renames)
        security_schemes.update(doc.get("components", {}).get("securitySchemes", {}))
        for path, item in doc.get("paths", {}).items():
            if path in ("/metrics",):
                continue
            new_item = _rewrite_refs(copy.deepcopy(item), renames)
            for op in new_item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                if "operationId" in op:
                    op["operationId"] = f"{service}_{op['operationId']}"
                op["tags"] = [f"{service}: {t}" for t in op.get("tags", [])] or [service]
            paths[f"/{service}{path if path != '/' else ''}"] = new_item
        seen = {t["name"] for t in tags}
        for tag in doc.get("tags", []):
            name = f"{service}: {tag['name']}"
            if name not in seen:
                tags.append({**tag, "name": name})
    merged["paths"] = dict(sorted(paths.items()))
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    _add_gateway_responses(merged["paths"])
    _add_links(merged["paths"])
    return merged


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def _operations(paths: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in paths.items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


def _add_gateway_responses(paths: dict[str, Any]) -> None:
    """Every status the gateway itself may answer is stated on every operation."""
    for _, _, op in _operations(paths):
        responses = op["responses"]
        extra = {**GATEWAY_RESPONSES, **(BODY_RESPONSES if "requestBody" in op else {})}
        for status, description in extra.items():
            responses.setdefault(status, _problem(description))
        op["responses"] = dict(sorted(responses.items()))


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from creating operations to the ones that use what they return (only
    between operations present in this document)."""
    present = {op.get("operationId") for _, _, op in _operations(paths)}
    for _, _, op in _operations(paths):
        links = LINKS.get(op.get("operationId", ""))
        if not links:
            continue
        for status, response in op["responses"].items():
            if not status.startswith("2"):
                continue
            response["links"] = {
                name: {"operationId": target, "parameters": dict(params)}
                for name, target, params in links
                if target in present
            }
