"""The merged OpenAPI document: every service under its prefix, and no drift from docs/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vre_gateway.config import SERVICES

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "openapi.json"


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "vre_gateway", "openapi"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _service_doc(name: str) -> dict[str, Any]:
    module = __import__(f"vre_{name}.main", fromlist=["create_app"])
    from vre_common.auth import StaticKeySource, TokenValidator
    from vre_common.settings import AuthSettings

    app = module.create_app(validator=TokenValidator(AuthSettings(), StaticKeySource({})))
    doc: dict[str, Any] = app.openapi()
    return doc


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_of_each_service_is_under_its_prefix(
    merged: dict[str, Any], service: str
) -> None:
    own = _service_doc(service)
    for path, item in own["paths"].items():
        if path == "/metrics":
            continue
        merged_item = merged["paths"][f"/{service}{path}"]
        for method, op in item.items():
            assert merged_item[method]["operationId"] == f"{service}_{op['operationId']}"


def test_operation_ids_are_unique(merged: dict[str, Any]) -> None:
    ids = [
        op["operationId"]
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))


def test_every_ref_resolves(merged: dict[str, Any]) -> None:
    schemas = merged["components"]["schemas"]
    text = json.dumps(merged)
    import re

    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert ref in schemas, ref


def test_committed_document_does_not_drift(merged: dict[str, Any]) -> None:
    assert COMMITTED.exists(), "run `make openapi` to write docs/openapi.json"
    committed = json.loads(COMMITTED.read_text())
    assert committed == merged, "docs/openapi.json is out of date: run `make openapi`"


async def test_docs_are_served_without_a_cdn() -> None:
    from vre_common.testing import TestIssuer, app_client
    from vre_gateway.config import GatewaySettings
    from vre_gateway.main import create_app

    app = create_app(GatewaySettings(), validator=TestIssuer().validator())
    async with app_client(app) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        for asset in ("/static/docs/swagger-ui-bundle.js", "/static/docs/swagger-ui.css"):
            r = await client.get(asset)
            assert r.status_code == 200
            assert asset.rsplit("/", 1)[-1] in page.text


def test_two_schemas_never_merge_into_one_name() -> None:
    """A service's `DepositionList` and `ZenodoDepositionList` would both become
    `ZenodoDepositionList`: the merge refuses instead of dropping one."""
    from vre_gateway.openapi import merge_openapi

    def doc(*names: str) -> dict[str, Any]:
        schemas = {n: {"type": "object", "title": n} for n in names}
        return {"openapi": "3.1.0", "paths": {}, "components": {"schemas": schemas}}

    merged = merge_openapi(doc(), {"zenodo": doc("DepositionList", "AccountDepositionList")})
    assert {"ZenodoDepositionList", "ZenodoAccountDepositionList"} <= set(
        merged["components"]["schemas"]
    )
    with pytest.raises(ValueError, match="ZenodoDepositionList"):
        merge_openapi(doc(), {"zenodo": doc("DepositionList", "ZenodoDepositionList")})


def _operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }


def test_links_lead_from_each_creating_operation_to_its_users(merged: dict[str, Any]) -> None:
    """Every link names an operation of the document and fills each of its path parameters
    (and only those) from the creating operation's answer or request."""
    from vre_gateway.openapi import LINKS

    ops = _operations(merged)
    for creator in LINKS:
        _, _, op = ops[creator]
        successes = [r for status, r in op["responses"].items() if status.startswith("2")]
        assert successes, creator
        for response in successes:
            links = response["links"]
            assert links, creator
            for name, link in links.items():
                target = ops[link["operationId"]][2]
                path_params = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) == path_params, (creator, name)
                for expression in link["parameters"].values():
                    assert expression.startswith(("$response.body#/", "$request.path.")), name
    # The chains the issue names are there.
    assert "DownloadFile" in ops["datalake_upload_file"][2]["responses"]["201"]["links"]
    run_links = ops["workflows_create_run"][2]["responses"]["201"]["links"]
    assert {"GetRun", "GetRunLogs", "ListRunOutputs"} <= set(run_links)
    assert "GetProject" in ops["create_project"][2]["responses"]["201"]["links"]
    deposition = ops["zenodo_create_deposition"][2]["responses"]["202"]["links"]
    assert "PublishDeposition" in deposition


def test_link_expressions_point_at_fields_of_the_answer(merged: dict[str, Any]) -> None:
    """A ``$response.body#/a/b`` pointer names properties the response schema has."""
    ops = _operations(merged)
    schemas = merged["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    for _, _, op in ops.values():
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                for expression in link["parameters"].values():
                    if not expression.startswith("$response.body#/"):
                        continue
                    schema = resolve(response["content"]["application/json"]["schema"])
                    for part in expression.split("#/", 1)[1].split("/"):
                        if part.isdigit():
                            schema = resolve(schema["items"])
                        else:
                            schema = resolve(schema["properties"][part])


def test_statuses_the_gateway_answers_are_stated_everywhere(merged: dict[str, Any]) -> None:
    for _, (_, path, op) in _operations(merged).items():
        assert {"414", "429"} <= set(op["responses"]), path
        if "requestBody" in op:
            assert "413" in op["responses"], path
