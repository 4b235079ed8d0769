"""The catalogue's OpenAPI document builds without configuration and documents every route."""

from __future__ import annotations

from vre_catalogue.main import create_app


def test_every_route_documented() -> None:
    spec = create_app().openapi()
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path not in ("/healthz", "/readyz")
    ]
    assert len(operations) == 16
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where
        assert any(code.startswith("2") for code in op["responses"]), where
        problems = [
            code
            for code, response in op["responses"].items()
            if "application/problem+json" in response.get("content", {})
        ]
        assert problems, where
    schemas = spec["components"]["schemas"]
    for model in ("Software", "Registration", "SearchResult", "HarvestJob", "ZenodoExport"):
        assert schemas[model].get("examples"), model
    register = spec["paths"]["/software"]["post"]
    examples = register["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"codemeta 3.0", "codemeta 2.0"}
    operation_ids = [op["operationId"] for _, _, op in operations]
    assert len(set(operation_ids)) == len(operation_ids)
