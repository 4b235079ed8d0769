"""Every problem type of the VRE, for its page at ``/problems/{slug}`` and docs/problems.md.

Sources, one fact each: the :class:`~vre_common.errors.VreError` classes of the common library
and of every service (slug, status, title, docstring = what it means, ``advice`` or the status'
default = what to do), the HTTP-level problems of :mod:`vre_common.problems` (no route, wrong
method…), and the problems recorded on background jobs (``JOB_PROBLEM_TYPES``).

    .venv/bin/python -m vre_gateway.problem_types          # rewrite docs/problems.md
    .venv/bin/python -m vre_gateway.problem_types --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from vre_common.errors import ADVICE_BY_STATUS, JOB_PROBLEM_TYPES, VreError
from vre_common.problems import http_problem_types

# The modules whose import defines every error class a service raises (its app and below).
SERVICE_MODULES = (
    "vre_gateway.main",
    "vre_datalake.main",
    "vre_workflows.main",
    "vre_catalogue.main",
    "vre_zenodo.main",
    "vre_ivoa.main",
)

_HTTP_MEANINGS = {
    400: "The request could not be read: a header or the body is malformed.",
    401: "The request carries no valid access token.",
    403: "The caller may not do this.",
    404: "Nothing answers at this URL (no such route, or no such resource).",
    405: "The URL exists, but not with this method.",
    406: "None of the media types in `Accept` can be produced.",
    409: "The request conflicts with the resource's current state.",
    411: "The request needs a `Content-Length`.",
    413: "The request body is larger than this operation accepts.",
    414: "The query string is longer than the gateway accepts.",
    415: "The body's media type is not one this operation reads.",
    416: "The `Range` asked for lies outside the file.",
    422: "The request is well-formed, but some fields are wrong (`errors` lists each).",
    429: "Too many requests from this caller in a short time.",
}


@dataclass
class ProblemType:
    """One problem type: what it means and what to do."""

    slug: str
    title: str
    status: int
    meaning: str
    advice: str
    raised_by: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """The page as JSON."""
        return {
            "type": self.slug,
            "title": self.title,
            "status": self.status,
            "meaning": self.meaning,
            "advice": self.advice,
            "raised_by": self.raised_by,
        }

    def markdown(self) -> str:
        """The page as Markdown (a section of docs/problems.md)."""
        lines = [
            f"## {self.slug}",
            "",
            f"**{self.status} {self.title}**",
            "",
            f"What it means: {self.meaning}",
            "",
            f"What to do: {self.advice}",
        ]
        if self.raised_by:
            lines += ["", "Raised by: " + ", ".join(f"`{name}`" for name in self.raised_by)]
        return "\n".join(lines) + "\n"


def _doc(cls: type) -> str:
    text = inspect.getdoc(cls) or ""
    return " ".join(text.split("\n\n")[0].split()) or cls.__name__


def _error_classes() -> list[type[VreError]]:
    for module in SERVICE_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # a deployment without that service installed
            continue
    seen: list[type[VreError]] = []
    todo: list[type[VreError]] = [VreError]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    # Test doubles (defined in test modules) are not the API's problem types.
    return [c for c in seen if c.__module__.startswith("vre_")]


@cache
def catalog() -> dict[str, ProblemType]:
    """Every problem type, by slug (sorted)."""
    types: dict[str, ProblemType] = {}
    for slug, (status, title) in http_problem_types().items():
        types[slug] = ProblemType(
            slug, title, status, _HTTP_MEANINGS.get(status, title), ADVICE_BY_STATUS[status]
        )
    for slug, (status, title, meaning, advice) in JOB_PROBLEM_TYPES.items():
        types.setdefault(slug, ProblemType(slug, title, status, meaning, advice))
    for cls in sorted(_error_classes(), key=lambda c: (c.slug, c.__module__, c.__qualname__)):
        name = f"{cls.__module__}.{cls.__qualname__}"
        known = types.get(cls.slug)
        if known is None:
            advice = cls.advice or ADVICE_BY_STATUS.get(cls.status) or ADVICE_BY_STATUS[500]
            types[cls.slug] = ProblemType(cls.slug, cls.title, cls.status, _doc(cls), advice)
            known = types[cls.slug]
        elif cls.advice and known.advice == ADVICE_BY_STATUS.get(known.status):
            known.advice = cls.advice
        known.raised_by.append(name)
    return dict(sorted(types.items()))


HEADER = """\
# Problem types

Every error of the VRE API is an RFC 9457 `application/problem+json` document whose `type` is
the URI of one of these pages: the gateway serves each at `/problems/{slug}` (HTML for a
browser, JSON for `Accept: application/json`, Markdown for `Accept: text/markdown`), and the
base of the URI is the setting `VRE_PROBLEM_BASE_URI` (default: the gateway's `public_url`,
else the origin the client called). Every problem has `title`, `status`, `detail`, `instance`
and a `request_id` to quote; `errors` lists each wrong field (`loc`, `msg`, `type`).

Generated from the code (`.venv/bin/python -m vre_gateway.problem_types`); a test fails when
it drifts.
"""


def render() -> str:
    """docs/problems.md."""
    return HEADER + "".join("\n" + p.markdown() for p in catalog().values())


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or ``--check``) docs/problems.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--output", type=Path, default=Path("docs/problems.md"))
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run make docs", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
