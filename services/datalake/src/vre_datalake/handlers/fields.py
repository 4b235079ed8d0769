"""Where in the request a field the services name came from (their errors say ``rse``; the
client sent ``?rse=``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from vre_common.errors import VreError


@contextmanager
def located(fields: Mapping[str, Sequence[str | int]]) -> Iterator[None]:
    """Rewrite the ``loc`` of errors raised inside: a first element named in ``fields`` is
    replaced by its place in the request (e.g. ``rse`` → ``query, rse``)."""
    try:
        yield
    except VreError as exc:
        for error in exc.errors or []:
            loc = error.get("loc")
            if isinstance(loc, list | tuple) and loc and loc[0] in fields:
                error["loc"] = [*fields[str(loc[0])], *loc[1:]]
        raise
