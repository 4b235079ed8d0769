"""Merge the services' OpenAPI documents into the gateway's one document.

Each service's paths go under ``/<service>``, its operationIds and tags get the service
name as prefix, and its component schemas are renamed ``<Service><Name>`` unless an
identical schema of that name already exists (``Problem`` is shared by all).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from vre_common.problems import Problem

REF_PREFIX = "#/components/schemas/"


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
    return merged
