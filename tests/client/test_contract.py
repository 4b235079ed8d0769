"""The client and the API cannot drift: every request the client's code makes exists in
docs/openapi.json — its path, its method, the query parameters and headers it sends and the
keys of the JSON bodies it builds.

The client's source is read, not run: each call ``<session>.json|request|stream(METHOD,
PATH, ...)`` (and the polling helper ``_wait(session, PATH, ...)``) is found in the syntax
tree, its path rebuilt with ``{}`` where values go, and matched against the document's path
templates. Dict literals bound to ``params``/``headers``/``body`` (or passed as ``params=``,
``headers=``, ``json=``) in the same function, and ``params["key"] = …`` assignments, give
the names it sends.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "clients/python/src/vre"
OPENAPI = json.loads((ROOT / "docs/openapi.json").read_text())
REQUEST_METHODS = {"json", "request", "stream"}
# Headers httpx sets itself or that every route accepts; not operation parameters.
TRANSPORT_HEADERS = {"content-type", "user-agent", "authorization", "accept"}


@dataclass
class Call:
    where: str
    method: str
    path: str
    params: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    body: set[str] = field(default_factory=set)


def _literal_path(node: ast.expr, names: dict[str, ast.expr], attrs: dict[str, ast.expr]) -> str:
    """The path an expression builds, with ``{}`` for every value put in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                inner = value.value
                resolved = None
                if isinstance(inner, ast.Name) and inner.id in names:
                    resolved = _literal_path(names[inner.id], names, attrs)
                parts.append(resolved if resolved and resolved.startswith("/") else "{}")
        return "".join(parts)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    ):
        return str(node.func.value.value).replace("{}", "{}")
    if isinstance(node, ast.Name) and node.id in names:
        return _literal_path(names[node.id], names, attrs)
    if isinstance(node, ast.Attribute) and node.attr in attrs:
        return _literal_path(attrs[node.attr], names, attrs)
    raise AssertionError(f"cannot read the path of {ast.unparse(node)}")


def _dict_keys(node: ast.expr | None) -> set[str]:
    if isinstance(node, ast.IfExp):  # {"project": project} if project else None
        return _dict_keys(node.body) | _dict_keys(node.orelse)
    if isinstance(node, ast.Dict):
        return {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return set()


def _calls() -> list[Call]:
    found: list[Call] = []
    for file in sorted(SOURCE.glob("*.py")):
        tree = ast.parse(file.read_text())
        for cls in [tree, *[n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]]:
            attrs: dict[str, ast.expr] = {}
            for node in ast.walk(cls):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Attribute):
                            attrs[target.attr] = node.value
            functions = [n for n in ast.iter_child_nodes(cls) if isinstance(n, ast.FunctionDef)] + [
                n for n in ast.walk(cls) if isinstance(n, ast.FunctionDef) and cls is tree
            ]
            for function in {id(f): f for f in functions}.values():
                found += _function_calls(file, function, attrs)
    return list({c.where: c for c in found}.values())  # module-level walk sees methods too


def _function_calls(
    file: Path, function: ast.FunctionDef, attrs: dict[str, ast.expr]
) -> list[Call]:
    names: dict[str, ast.expr] = {}
    keys: dict[str, set[str]] = {"params": set(), "headers": set(), "body": set()}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    names[target.id] = node.value
                    if target.id in keys:
                        keys[target.id] |= _dict_keys(node.value)
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in keys
                    and isinstance(target.slice, ast.Constant)
                ):
                    keys[target.value.id].add(target.slice.value)
                # body["record_id" if ... else "doi"] = ...: both names
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in keys
                    and isinstance(target.slice, ast.IfExp)
                ):
                    for part in (target.slice.body, target.slice.orelse):
                        if isinstance(part, ast.Constant):
                            keys[target.value.id].add(part.value)
        # ("project", project), ... pairs stored into body in a loop
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
            for element in node.iter.elts:
                if isinstance(element, ast.Tuple) and isinstance(element.elts[0], ast.Constant):
                    keys["body"].add(element.elts[0].value)
    calls = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        method_arg: ast.expr | None = None
        path_arg: ast.expr | None = None
        if isinstance(func, ast.Attribute) and func.attr in REQUEST_METHODS and len(node.args) >= 2:
            method_arg, path_arg = node.args[0], node.args[1]
        elif isinstance(func, ast.Name) and func.id == "_wait":
            method_arg, path_arg = ast.Constant("GET"), node.args[1]
        elif isinstance(func, ast.Attribute) and func.attr == "_follow":
            method_arg, path_arg = ast.Constant("GET"), node.args[0]
        if not (isinstance(method_arg, ast.Constant) and isinstance(method_arg.value, str)):
            continue
        if method_arg.value.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            continue
        assert path_arg is not None
        arguments = {a.arg for a in function.args.args}
        if isinstance(path_arg, ast.Name) and path_arg.id in arguments:
            continue  # a helper's parameter: its callers are checked instead
        call = Call(
            where=f"{file.name}:{node.lineno} ({function.name})",
            method=method_arg.value.lower(),
            path=_literal_path(path_arg, names, attrs),
        )
        for keyword in node.keywords:
            if keyword.arg == "params":
                call.params |= _dict_keys(keyword.value) | keys["params"]
            elif keyword.arg == "headers":
                call.headers |= _dict_keys(keyword.value) | keys["headers"]
            elif keyword.arg == "json":
                call.body |= _dict_keys(keyword.value)
                if isinstance(keyword.value, ast.Name) and keyword.value.id == "body":
                    call.body |= keys["body"]
        if isinstance(func, ast.Attribute) and func.attr == "_follow":
            call.params |= keys["params"]
        calls.append(call)
    return calls


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    for template, operations in OPENAPI["paths"].items():
        pattern = re.escape(re.sub(r"\{[^}]+\}", "\0", template)).replace("\0", r"\{\}")
        if re.fullmatch(pattern, path) and method in operations:
            return template, operations[method]
    raise AssertionError(f"{method.upper()} {path} is not in docs/openapi.json")


def _schema(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in ref_or_schema:
        ref_or_schema = OPENAPI["components"]["schemas"][ref_or_schema["$ref"].split("/")[-1]]
    return ref_or_schema


CALLS = _calls()


def test_the_client_source_was_read() -> None:
    """The scan finds the client's calls (a broken scan must not pass vacuously)."""
    assert len(CALLS) >= 30
    seen = {(c.method, c.path) for c in CALLS}
    assert ("put", "/datalake/files/{}/{}") in seen
    assert ("post", "/workflows/runs") in seen
    assert ("get", "/provenance") in seen


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method.upper()} {c.path} @ {c.where}")
def test_call_exists_in_openapi(call: Call) -> None:
    template, operation = _operation(call.method, call.path)
    parameters = {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
    for name in call.params:
        assert ("query", name.lower()) in parameters, (
            f"{call.where}: {call.method.upper()} {template} has no query parameter {name!r}"
        )
    for name in call.headers:
        if name.lower() in TRANSPORT_HEADERS:
            continue
        assert ("header", name.lower()) in parameters, (
            f"{call.where}: {call.method.upper()} {template} has no header {name!r}"
        )
    if call.body:
        content = operation.get("requestBody", {}).get("content", {})
        assert "application/json" in content, f"{call.where}: {template} takes no JSON body"
        schema = _schema(content["application/json"]["schema"])
        properties = schema.get("properties")
        if properties is not None and not schema.get("additionalProperties"):
            unknown = call.body - set(properties)
            assert not unknown, f"{call.where}: {template} has no body field(s) {unknown}"


def test_a_drifted_path_is_caught() -> None:
    """The matcher itself refuses what the API does not have."""
    with pytest.raises(AssertionError, match=r"not in docs/openapi\.json"):
        _operation("get", "/datalake/filez/{}/{}")
    with pytest.raises(AssertionError, match=r"not in docs/openapi\.json"):
        _operation("delete", "/workflows/validate")
