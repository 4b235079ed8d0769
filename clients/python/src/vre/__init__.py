"""vre — the VRE's Python client.

>>> import vre
>>> client = vre.Client()                    # VRE_URL + WLCG bearer token discovery
>>> client.datalake.table("user.alice:events.fits")
>>> run = client.workflows.submit("reana.yaml", inputs={"events.fits": "user.alice:events.fits"})
>>> run.wait()

Modules: :mod:`vre.client` (``Client``), :mod:`vre.datalake`, :mod:`vre.workflows`,
:mod:`vre.services` (projects, catalogue, Zenodo, IVOA, provenance), :mod:`vre.fs`
(``vre://`` for fsspec), :mod:`vre.config` (token discovery), :mod:`vre.errors`,
:mod:`vre.hub` (the JupyterHub token refresher), :mod:`vre.cli` (the ``vre`` command).
"""

from vre.client import Client
from vre.config import discover_token, vre_url, write_token_file
from vre.datalake import Did, UploadedFile
from vre.errors import (
    ApiError,
    ChecksumMismatchError,
    ForbiddenError,
    NotFoundError,
    RunFailedError,
    UnauthorizedError,
    VreError,
)
from vre.services import ProvenanceGraph, Publication
from vre.workflows import Run

__all__ = [
    "ApiError",
    "ChecksumMismatchError",
    "Client",
    "Did",
    "ForbiddenError",
    "NotFoundError",
    "ProvenanceGraph",
    "Publication",
    "Run",
    "RunFailedError",
    "UnauthorizedError",
    "UploadedFile",
    "VreError",
    "discover_token",
    "vre_url",
    "write_token_file",
]
