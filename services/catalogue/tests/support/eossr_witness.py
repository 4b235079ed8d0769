"""The OSSR's own tools as a witness: eossr's codemeta validator and codemeta → Zenodo converter.

Runs with ``.venv-eossr/bin/python`` (eossr pulls numpy and pandas, kept out of ``.venv``); it
imports nothing of ours. Reads a JSON list of codemeta documents on stdin and writes one verdict
per document on stdout::

    {"validate": {"valid": bool, "error": str | None, "warnings": [str]},
     "convert": {"ok": bool, "error": str | None, "zenodo": {...} | None}}

``validate`` is ``eossr.metadata.codemeta.Codemeta.validate`` as the OSSR runs it (required keys
raise, recommended keys warn). ``convert`` is ``codemeta2zenodo`` with its own validation turned
off, so the converter's value checks (dates, persons, URLs) are seen even where the validator
stopped earlier. eossr asks Zenodo and GitHub for their license and community lists; here those
answers come from the SPDX list that ``packaging`` ships (every SPDX id is a Zenodo license id,
lower-cased), communities are never matched, and any other network use fails.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import warnings
from typing import Any
from unittest import mock


def _no_network(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError("the eossr witness runs offline")


def _spdx_ids() -> list[str]:
    from packaging.licenses._spdx import LICENSES

    return [entry["id"] for entry in LICENSES.values()]


def _validate(document: Any) -> dict[str, Any]:
    from eossr.metadata.codemeta import Codemeta

    result: dict[str, Any] = {"valid": True, "error": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Codemeta(document).validate()
        except Exception as exc:
            result = {"valid": False, "error": f"{type(exc).__name__}: {exc}"}
    result["warnings"] = [str(w.message) for w in caught]
    return result


def _convert(document: Any) -> dict[str, Any]:
    from eossr.metadata import codemeta as eossr_codemeta
    from eossr.metadata.codemeta2zenodo import converters, core

    ids = _spdx_ids()
    zenodo_licenses = [{"id": i.lower(), "title": {"en": i}} for i in ids]
    with (
        mock.patch.object(eossr_codemeta.Codemeta, "validate", return_value=True),
        mock.patch.object(converters.LicenseConverter, "_all_zenodo_licenses", zenodo_licenses),
        mock.patch.object(converters.LicenseConverter, "_all_zenodo_license_ids", None),
        mock.patch.object(converters.LicenseConverter, "_all_zenodo_license_titles", None),
        mock.patch.object(converters, "spdx_licenses", return_value=ids),
        mock.patch.object(converters, "search_communities", return_value=[]),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            zenodo = core.codemeta2zenodo(document)
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "zenodo": None}
    if "datePublished" not in document:
        zenodo.pop("publication_date", None)  # eossr puts today's date there
    return {"ok": True, "error": None, "zenodo": zenodo}


def verdict(document: Any) -> dict[str, Any]:
    """eossr's validator and converter on one document."""
    if not isinstance(document, dict):
        refused = {"valid": False, "error": "not a JSON object", "warnings": []}
        return {"validate": refused, "convert": {"ok": False, "error": None, "zenodo": None}}
    return {"validate": _validate(document), "convert": _convert(document)}


def _python311_shim() -> None:
    """eossr 2.3.1 reads its crosswalk with ``importlib.resources.files(<module name>)``, which
    only Python 3.12 accepts (3.11 raises "is not a package"); on 3.12 it means the module's
    folder, so the same folder is given here."""
    from importlib import resources

    from eossr.metadata import codemeta as eossr_codemeta

    folder = resources.files("eossr.metadata")
    eossr_codemeta.files = lambda _name: folder  # type: ignore[attr-defined]


def main() -> None:
    """Verdicts for the JSON list of documents on stdin, as a JSON list on stdout."""
    documents = json.load(sys.stdin)
    if sys.version_info < (3, 12):
        _python311_shim()
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network
    with contextlib.redirect_stdout(sys.stderr):  # eossr prints "CodeMeta is valid"
        verdicts = [verdict(doc) for doc in documents]
    json.dump(verdicts, sys.stdout)


if __name__ == "__main__":
    main()
