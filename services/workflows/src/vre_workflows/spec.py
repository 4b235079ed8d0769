"""reana.yaml handling that needs no REANA code: parsing with locations, digests, paths, images."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from vre_workflows.models import SpecFinding

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # Merge keys (``<<: *base``, YAML 1.1, which REANA's PyYAML loader accepts) may be overridden
    # by the mapping's own keys; only the keys written in this mapping must be unique.
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        key = loader.construct_object(key_node)
        try:
            repeated = key in seen
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found a list or mapping used as a key",
                key_node.start_mark,
            ) from exc
        if repeated:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen[key] = key_node
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


@dataclass
class SourceMap:
    """Where each part of a YAML/JSON document is (1-based lines and columns)."""

    root: yaml.Node | None = None

    def locate(self, path: list[str | int]) -> tuple[int, int] | None:
        """The position of the node at ``path``, or of its deepest existing ancestor."""
        node = self.root
        if node is None:
            return None
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1, node.start_mark.column + 1


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != MERGE_TAG and key.value == str(part):
                return value  # type: ignore[no-any-return]
        for key, value in node.value:  # then what ``<<`` merges in (the first one wins)
            if key.tag == MERGE_TAG:
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    found = _child(source, part)
                    if found is not None:
                        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


@dataclass
class ParsedSpec:
    """A parsed reana.yaml with the map of its source (empty for an object given as JSON)."""

    spec: Any
    source: SourceMap = field(default_factory=SourceMap)


def parse_spec_text(text: str) -> ParsedSpec:
    """Parse reana.yaml text (YAML or JSON); a syntax error raises ``SpecSyntaxError``."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        spec = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise SpecSyntaxError(
            SpecFinding(
                loc=["spec"],
                path="",
                msg=f"not valid YAML/JSON: {problem}",
                type="syntax",
                line=line,
                column=column,
            )
        ) from exc
    except RecursionError as exc:
        raise SpecSyntaxError(
            SpecFinding(loc=["spec"], path="", msg="nested too deeply", type="syntax")
        ) from exc
    except yaml.YAMLError as exc:
        raise SpecSyntaxError(
            SpecFinding(loc=["spec"], path="", msg=f"not valid YAML/JSON: {exc}", type="syntax")
        ) from exc
    findings = non_json_findings(root)
    if findings:
        raise SpecSyntaxError(*findings)
    try:  # the spec is hashed and stored as JSON (UTF-8): YAML-only values cannot be
        json.dumps(spec, ensure_ascii=False).encode()
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise SpecSyntaxError(
            SpecFinding(
                loc=["spec"],
                path="",
                msg="not representable as JSON: only strings (valid Unicode), numbers, "
                "booleans, null, lists and maps; quote dates and binary values "
                f"({type(exc).__name__})",
                type="syntax",
            )
        ) from exc
    return ParsedSpec(spec=spec, source=SourceMap(root))


class SpecSyntaxError(Exception):
    """The text is not YAML/JSON, or holds values JSON cannot carry (dates, binary, sets)."""

    def __init__(self, finding: SpecFinding, *more: SpecFinding) -> None:
        super().__init__(finding.msg)
        self.finding = finding
        self.findings = [finding, *more]


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_NON_JSON_TAGS = {
    _TIMESTAMP_TAG: "a date",
    "tag:yaml.org,2002:binary": "binary data",
    "tag:yaml.org,2002:set": "a set",
    "tag:yaml.org,2002:omap": "an ordered map",
    "tag:yaml.org,2002:pairs": "a list of pairs",
}


def non_json_findings(root: yaml.Node | None) -> list[SpecFinding]:
    """Values YAML reads as something JSON has no type for, each with its path and position.

    REANA's loader (PyYAML's ``safe_load``) reads an unquoted ``2021-03-04`` as a date:
    ``reana-client validate`` lets it pass, but reana-client sends the specification as JSON and
    cannot encode a date, so such a reana.yaml never reaches REANA (``create`` fails with
    "Object of type date is not JSON serializable"). The service stores specifications as JSON
    too: it names each such value and says to quote it.
    """
    findings: list[SpecFinding] = []
    visited: set[int] = set()

    def walk(node: yaml.Node, path: list[str | int]) -> None:
        if id(node) in visited:  # an alias: reported where the anchor is written
            return
        visited.add(id(node))
        what = _NON_JSON_TAGS.get(node.tag)
        if what is not None:
            shown = node.value if isinstance(node, yaml.ScalarNode) else node.tag.rsplit(":", 1)[-1]
            hint = (
                f"quote it ('{shown}') to pass it as text"
                if node.tag == _TIMESTAMP_TAG
                else "write it as plain strings, lists and maps"
            )
            findings.append(
                SpecFinding(
                    loc=["spec", *path],
                    path=_dotted(path),
                    msg=f"{shown!s} is read by YAML (and by REANA's loader) as {what}, which "
                    f"cannot be sent as JSON (reana-client cannot submit it either): {hint}",
                    type="yaml.type",
                    line=node.start_mark.line + 1,
                    column=node.start_mark.column + 1,
                )
            )
            return
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.tag == MERGE_TAG:
                    walk(value, path)
                    continue
                if key.tag in _NON_JSON_TAGS:
                    walk(key, path)
                walk(value, [*path, str(key.value) if isinstance(key, yaml.ScalarNode) else "?"])
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, [*path, index])

    if root is not None:
        walk(root, [])
    return findings


def spec_sha256(spec: Any) -> str:
    """SHA-256 of the specification's canonical JSON (sorted keys, no spaces, UTF-8).

    Independent of YAML formatting and of whether it was sent as text or as an object.
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_relative_path(path: str) -> str | None:  # noqa: PLR0911 - one answer per rule
    """Why ``path`` is not a safe workspace-relative path, or None if it is."""
    if not path or not path.strip():
        return "the path is empty"
    if "\x00" in path or "\\" in path:
        return "the path contains a NUL or a backslash"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return "the path contains a control character (line feed, carriage return, tab…)"
    if path.startswith("~"):
        return "'~' paths are not allowed: give a path relative to the workspace"
    if path.startswith("/"):
        return "absolute paths are not allowed: give a path relative to the workspace"
    if ".." in path.split("/"):
        return "'..' is not allowed: paths must stay inside the workspace"
    normalized = posixpath.normpath(path)
    if normalized in (".", ""):
        return "the path names the workspace itself"
    return None


def path_findings(spec: Any) -> list[SpecFinding]:
    """Every declared input/output/workflow path that could leave the workspace."""
    findings: list[SpecFinding] = []
    if not isinstance(spec, dict):
        return findings
    for section in ("inputs", "outputs"):
        block = spec.get(section)
        if not isinstance(block, dict):
            continue
        for kind in ("files", "directories"):
            items = block.get(kind)
            if not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                if not isinstance(item, str):
                    continue
                reason = check_relative_path(item)
                if reason:
                    loc: list[str | int] = [section, kind, index]
                    findings.append(
                        SpecFinding(
                            loc=["spec", *loc],
                            path=_dotted(loc),
                            msg=f"{item!r}: {reason}",
                            type="path",
                        )
                    )
    workflow = spec.get("workflow")
    if isinstance(workflow, dict) and isinstance(workflow.get("file"), str):
        reason = check_relative_path(workflow["file"])
        if reason:
            findings.append(
                SpecFinding(
                    loc=["spec", "workflow", "file"],
                    path="workflow.file",
                    msg=f"{workflow['file']!r}: {reason}",
                    type="path",
                )
            )
    return findings


def _dotted(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path)


def workflow_type(spec: Any) -> str | None:
    """The engine named by the specification, if it is readable."""
    if isinstance(spec, dict) and isinstance(spec.get("workflow"), dict):
        kind = spec["workflow"].get("type")
        return kind if isinstance(kind, str) else None
    return None


def default_parameters(spec: Any) -> dict[str, Any]:
    """``inputs.parameters`` of the specification."""
    if isinstance(spec, dict) and isinstance(spec.get("inputs"), dict):
        params = spec["inputs"].get("parameters")
        if isinstance(params, dict):
            return dict(params)
    return {}


def serial_steps(spec: Any) -> list[dict[str, Any]]:
    """The serial steps of an inline specification (empty for other engines)."""
    workflow = spec.get("workflow") if isinstance(spec, dict) else None
    if not isinstance(workflow, dict) or workflow.get("type") != "serial":
        return []
    specification = workflow.get("specification")
    if not isinstance(specification, dict) or not isinstance(specification.get("steps"), list):
        return []
    return [s for s in specification["steps"] if isinstance(s, dict)]


def step_name(step: dict[str, Any], index: int) -> str:
    """A step's name as REANA shows it (its index when unnamed)."""
    name = step.get("name")
    return name if isinstance(name, str) and name else str(index)


def images(spec: Any) -> list[str]:
    """The container images the steps declare, in order, without repeats."""
    return list(
        dict.fromkeys(
            s["environment"] for s in serial_steps(spec) if isinstance(s.get("environment"), str)
        )
    )


def declared_outputs(spec: Any) -> tuple[list[str], list[str]]:
    """``outputs.files`` and ``outputs.directories``, normalised."""
    block = spec.get("outputs") if isinstance(spec, dict) else None
    if not isinstance(block, dict):
        return [], []
    files = [posixpath.normpath(p) for p in block.get("files") or [] if isinstance(p, str)]
    dirs = [posixpath.normpath(p) for p in block.get("directories") or [] if isinstance(p, str)]
    return files, dirs
