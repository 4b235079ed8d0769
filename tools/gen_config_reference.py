"""Render the configuration reference (docs/configuration.md) from the settings classes.

    .venv/bin/python tools/gen_config_reference.py          # rewrite docs/configuration.md
    .venv/bin/python tools/gen_config_reference.py --check  # exit 1 if it is out of date

Every environment variable of the gateway and the services, with its type, default and
description, comes from the pydantic-settings classes themselves (one fact, one place); a
test fails when the committed file differs from what this prints.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "configuration.md"

# (service, settings module, class): the order of the document.
SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("gateway", "vre_gateway.config", "GatewaySettings"),
    ("datalake", "vre_datalake.config", "DatalakeSettings"),
    ("workflows", "vre_workflows.config", "WorkflowsSettings"),
    ("catalogue", "vre_catalogue.config", "CatalogueSettings"),
    ("zenodo", "vre_zenodo.config", "ZenodoSettings"),
    ("ivoa", "vre_ivoa.config", "IvoaSettings"),
)

# Defaults computed from where the code runs are shown symbolically, so the document is the
# same on every machine: the data folder and the virtual environment.
DATA_SENTINEL = "/VRE_DATA_SENTINEL"


@dataclass(frozen=True)
class Setting:
    """One environment variable."""

    env: str
    type: str
    default: str
    description: str
    secret: bool


@dataclass
class Section:
    """The variables of one settings model (the service itself, or a nested model)."""

    title: str
    doc: str
    settings: list[Setting] = field(default_factory=list)
    # dict-valued fields whose values are models: documented as JSON objects
    value_models: list[tuple[str, type[BaseModel]]] = field(default_factory=list)


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """Import every service's settings class."""
    classes = []
    for service, module, name in SETTINGS:
        classes.append((service, getattr(importlib.import_module(module), name)))
    return classes


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel of ``X`` or ``X | None``; None for anything else."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _model_in(models[0])
    return None


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is dict:
        args = get_args(annotation)
        if len(args) == 2:
            return _model_in(args[1])
    return None


def type_name(annotation: Any) -> str:  # noqa: PLR0911 - one return per kind of type
    """A short, readable name of a field's type."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        return f"list[{', '.join(type_name(a) for a in get_args(annotation) if a is not ...)}]"
    if origin is dict:
        key, value = get_args(annotation)
        return f"dict[{type_name(key)}, {type_name(value)}]"
    if annotation is type(None):
        return "null"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "(set)" if value.get_secret_value() else ""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _symbolic(text: str) -> str:
    prefix = str(Path(sys.prefix))
    parent = str(Path(sys.prefix).parent)
    text = text.replace(DATA_SENTINEL, "$VRE_DATA")
    if prefix != "/":
        text = re.sub(re.escape(prefix) + r"(?=/|\"|$)", "<venv>", text)
    if parent not in ("/", ""):
        text = text.replace(parent + "/", "<venv>/../")
    return text


def default_text(info: FieldInfo) -> str:
    """The default of a field as it would be written in the environment."""
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return "**required**"
    value = _plain(value)
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value if value else '""'
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = json.dumps(value, separators=(", ", ": "))
    return _symbolic(text)


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(a) for a in get_args(annotation))


def sections(service: str, cls: type[BaseSettings]) -> list[Section]:
    """Every variable of ``cls``, one section per (nested) model, depth first."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    delimiter = str(cls.model_config.get("env_nested_delimiter") or "__")
    doc = (cls.__doc__ or "").strip().splitlines()[0]
    result: list[Section] = []

    def walk(model: type[BaseModel], env_prefix: str, title: str, doc: str) -> None:
        section = Section(title=title, doc=doc)
        result.append(section)
        nested: list[tuple[type[BaseModel], str, str]] = []
        for name, info in model.model_fields.items():
            env = f"{env_prefix}{name.upper()}"
            sub = _model_in(info.annotation)
            if sub is not None:
                sub_doc = (sub.__doc__ or "").strip().splitlines()[0] if sub.__doc__ else ""
                if info.description:
                    sub_doc = f"{sub_doc} {info.description}".strip()
                nested.append((sub, f"{env}{delimiter}", sub_doc))
                continue
            description = (info.description or "").replace("\n", " ")
            if info.examples:
                examples = ", ".join(f"`{e}`" for e in info.examples)
                description = f"{description} Example: {examples}.".strip()
            section.settings.append(
                Setting(
                    env=env,
                    type=type_name(info.annotation),
                    default=default_text(info),
                    description=description,
                    secret=_is_secret(info.annotation),
                )
            )
            value_model = _dict_value_model(info.annotation)
            if value_model is not None:
                section.value_models.append((env, value_model))
        for sub, sub_prefix, sub_doc in nested:
            walk(sub, sub_prefix, f"`{sub_prefix}…`", sub_doc)

    walk(cls, prefix, f"{service} (`{prefix}…`)", doc)
    return result


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable ``cls`` reads (leaf fields; nested models by ``__``)."""
    return {s.env for section in sections("", cls) for s in section.settings}


def iter_value_model_keys(model: type[BaseModel], path: str = "") -> Iterator[Setting]:
    """The keys of a JSON object whose shape is ``model`` (nested models flattened by '.')."""
    for name, info in model.model_fields.items():
        key = f"{path}{name}"
        sub = _model_in(info.annotation)
        if sub is not None:
            yield from iter_value_model_keys(sub, f"{key}.")
            continue
        yield Setting(
            env=key,
            type=type_name(info.annotation),
            default=default_text(info),
            description=(info.description or "").replace("\n", " "),
            secret=_is_secret(info.annotation),
        )


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if "\\|" not in text else text


def _code(text: str) -> str:
    if text in ("**required**", ""):
        return text
    if "`" in text:
        return _cell(text)
    return f"`{_cell(text)}`"


def render() -> str:
    """The whole document."""
    saved = os.environ.get("VRE_DATA")
    os.environ["VRE_DATA"] = DATA_SENTINEL
    try:
        lines = _render_lines()
    finally:
        if saved is None:
            os.environ.pop("VRE_DATA", None)
        else:
            os.environ["VRE_DATA"] = saved
    return "\n".join(lines).rstrip() + "\n"


def _render_lines() -> list[str]:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by tools/gen_config_reference.py from the settings classes; do not edit."
        " A test fails when this file is out of date: regenerate it with"
        " `.venv/bin/python tools/gen_config_reference.py`. -->",
        "",
        "Every setting is an environment variable (pydantic-settings). The gateway reads"
        " `VRE_…`, each service `VRE_<SERVICE>_…`; nested settings are joined with `__`"
        " (`VRE_AUTH__ISSUERS`). Lists and dictionaries are given as JSON"
        " (`VRE_AUTH__ISSUERS='[\"https://iam.example.org/\"]'`). Names are case-insensitive;"
        " unknown keys in a JSON value are refused. A *secret* is never logged or shown in"
        " errors. `$VRE_DATA` is the data folder (default `./.vre`); `<venv>` is the virtual"
        " environment the service runs in (`/opt/venv` in the images).",
        "",
        "Operations (deployment, backends, upgrades): [operations.md](operations.md).",
        "",
    ]
    for service, cls in settings_classes():
        for index, section in enumerate(sections(service, cls)):
            heading = "##" if index == 0 else "###"
            lines += [f"{heading} {section.title}", ""]
            if section.doc:
                lines += [section.doc, ""]
            if section.settings:
                lines += [
                    "| variable | type | default | description |",
                    "|---|---|---|---|",
                ]
                for s in section.settings:
                    kind = f"{s.type} (secret)" if s.secret and "secret" not in s.type else s.type
                    lines.append(
                        f"| `{s.env}` | {_cell(kind)} | {_code(s.default)} |"
                        f" {_cell(s.description)} |"
                    )
                lines.append("")
            for env, model in section.value_models:
                doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
                lines += [
                    f"Each value of `{env}` is a JSON object: {doc}",
                    "",
                    "| key | type | default | description |",
                    "|---|---|---|---|",
                ]
                for s in iter_value_model_keys(model):
                    lines.append(
                        f"| `{s.env}` | {_cell(s.type)} | {_code(s.default)} |"
                        f" {_cell(s.description)} |"
                    )
                lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Write docs/configuration.md, or check it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run tools/gen_config_reference.py", file=sys.stderr
            )
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
