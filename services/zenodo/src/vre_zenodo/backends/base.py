"""Ports of the zenodo service: Zenodo itself, the Data Lake, and the VRE services it reads."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from vre_common.clients.datalake import Did, DidRef, Download, ResolvedFile, UploadedFile
from vre_common.run_record import RunRecord

# ----------------------------------------------------------------------------- Zenodo models


class ZenodoFile(BaseModel):
    """A file of a record or deposition (records say ``key``, depositions ``filename``)."""

    id: str | None = None
    key: str = Field(description="The file name inside the record.")
    size: int = Field(ge=0)
    md5: str | None = Field(default=None, description="Hex md5 as Zenodo recorded it.")
    url: str | None = Field(default=None, description="Where its bytes are served.")


class ZenodoDeposition(BaseModel):
    """A deposition (a draft, or the editable side of a published record)."""

    id: int
    record_id: int | None = None
    concept_record_id: int | None = None
    state: str = Field(description="Zenodo's state: unsubmitted, inprogress or done.")
    submitted: bool = False
    doi: str | None = None
    concept_doi: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    bucket_url: str | None = None
    html_url: str | None = None
    latest_draft_id: int | None = Field(
        default=None, description="Old Zenodo's answer to newversion names the draft here."
    )
    files: list[ZenodoFile] = Field(default_factory=list)
    created: datetime | None = None
    modified: datetime | None = None


class BucketObject(BaseModel):
    """What a bucket PUT answered."""

    key: str
    size: int
    md5: str


class ZenodoRecord(BaseModel):
    """A published record."""

    id: int
    concept_record_id: int | None = None
    doi: str | None = None
    concept_doi: str | None = None
    title: str = ""
    description: str | None = None
    version: str | None = None
    license: str | None = None
    resource_type: str | None = None
    publication_date: str | None = None
    access_right: str | None = None
    creators: list[dict[str, Any]] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    communities: list[str] = Field(default_factory=list)
    html_url: str | None = None
    files: list[ZenodoFile] = Field(default_factory=list)
    created: datetime | None = None
    updated: datetime | None = None


class RecordQuery(BaseModel):
    """A records search."""

    q: str | None = None
    communities: list[str] = Field(default_factory=list)
    type: str | None = None
    sort: str | None = None
    page: int = Field(default=1, ge=1)
    size: int = Field(default=10, ge=1)


class RecordHits(BaseModel):
    """One page of Zenodo's answer."""

    hits: list[ZenodoRecord]
    total: int
    page: int
    size: int = Field(description="The page size actually asked of Zenodo (after capping).")
    has_next: bool


class FileStream(Protocol):
    """An open download of a record file."""

    size: int | None

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """The bytes; raises ChecksumMismatchError after the last chunk if md5 or size differ."""
        ...


# ----------------------------------------------------------------------------- ports


class ZenodoPort(Protocol):
    """Zenodo's deposit and records API, in our models and errors.

    ``token`` is the caller's personal Zenodo token (``None``: anonymous, records only).
    """

    def page_size_cap(self, token: str | None) -> int:
        """The largest search page Zenodo serves to this caller."""
        ...

    async def create_deposition(
        self, token: str, metadata: Mapping[str, Any] | None = None
    ) -> ZenodoDeposition:
        """A new empty draft (with metadata if given)."""
        ...

    async def get_deposition(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """One deposition of the token's owner."""
        ...

    async def list_depositions(
        self, token: str, *, page: int = 1, size: int = 25
    ) -> list[ZenodoDeposition]:
        """The token owner's depositions, newest first."""
        ...

    async def update_metadata(
        self, token: str, deposition_id: int, metadata: Mapping[str, Any]
    ) -> ZenodoDeposition:
        """Replace a draft's metadata."""
        ...

    async def upload_file(
        self,
        token: str,
        bucket_url: str,
        filename: str,
        content: AsyncIterable[bytes],
        *,
        size: int,
    ) -> BucketObject:
        """Stream a file into a deposition's bucket (overwrites a file of the same name)."""
        ...

    async def delete_file(self, token: str, bucket_url: str, filename: str) -> None:
        """Remove a file from a draft's bucket."""
        ...

    async def publish(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """Publish a draft; the answer carries the DOI and record id."""
        ...

    async def new_version(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """A new-version draft of a published deposition (whichever shape Zenodo answers)."""
        ...

    async def edit(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """Unlock a published deposition's metadata for editing."""
        ...

    async def discard(self, token: str, deposition_id: int) -> ZenodoDeposition:
        """Throw away the edits of a published deposition."""
        ...

    async def delete_deposition(self, token: str, deposition_id: int) -> None:
        """Delete an unpublished draft."""
        ...

    async def get_record(self, record_id: int, token: str | None = None) -> ZenodoRecord:
        """One published record."""
        ...

    async def search_records(self, query: RecordQuery, token: str | None = None) -> RecordHits:
        """One page of a records search (page size capped to what Zenodo allows)."""
        ...

    def iter_records(
        self, query: RecordQuery, token: str | None = None
    ) -> AsyncIterator[ZenodoRecord]:
        """Every record of a search, page after page (within Zenodo's result window)."""
        ...

    def download(
        self, file: ZenodoFile, token: str | None = None
    ) -> AbstractAsyncContextManager[FileStream]:
        """Open a record file for streaming, md5-verified."""
        ...


class DatalakePort(Protocol):
    """What this service needs of the datalake service (see vre_common.clients.datalake)."""

    async def my_scope(self) -> str:
        """The caller's own scope."""
        ...

    async def get_did(self, scope: str, name: str) -> Did:
        """One DID with its metadata."""
        ...

    async def create_dataset(
        self, scope: str, name: str, *, metadata: Mapping[str, Any] | None = None
    ) -> Did:
        """Create a dataset."""
        ...

    async def attach(self, scope: str, name: str, dids: Sequence[str | DidRef]) -> None:
        """Attach DIDs to a dataset."""
        ...

    async def set_metadata(self, scope: str, name: str, metadata: Mapping[str, Any]) -> None:
        """Set metadata keys on a DID."""
        ...

    async def resolve(
        self, dids: Sequence[str | DidRef], *, rse_expression: str | None = None
    ) -> list[ResolvedFile]:
        """The files behind DIDs."""
        ...

    async def upload(
        self,
        scope: str,
        name: str,
        content: AsyncIterable[bytes] | bytes,
        *,
        rse: str | None = None,
        md5: str | None = None,
        size: int | None = None,
        dataset: str | DidRef | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> UploadedFile:
        """Stream a file in and register it (Content-MD5 checked by the service)."""
        ...

    def download(
        self, scope: str, name: str, *, offset: int = 0, length: int | None = None
    ) -> AbstractAsyncContextManager[Download]:
        """Open a file for streaming."""
        ...


class DatalakeConnector(Protocol):
    """Gives a Data Lake port acting with one caller's token."""

    def for_token(self, token: str) -> DatalakePort:
        """The Data Lake as the holder of ``token``."""
        ...


class RunOutputsPort(Protocol):
    """The workflows service: a run's output DIDs and its record."""

    async def output_dids(self, token: str, run_id: str) -> list[str]:
        """``scope:name`` of every registered output of the run."""
        ...

    async def run_record(self, token: str, run_id: str) -> RunRecord:
        """The run's record (``GET /runs/{id}/record``), published beside its outputs."""
        ...


class RunnerPort(Protocol):
    """The workflows service as a reproduction uses it: submit, follow and cancel runs."""

    async def submit_run(self, token: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /runs`` (JSON ``RunCreate``): the new run."""
        ...

    async def get_run(self, token: str, run_id: str) -> dict[str, Any]:
        """``GET /runs/{id}``: the run with its outputs."""
        ...

    async def cancel_run(self, token: str, run_id: str) -> None:
        """``POST /runs/{id}/cancel`` (a run already over is left alone)."""
        ...


class WorkflowsPort(RunOutputsPort, RunnerPort, Protocol):
    """Everything this service asks of the workflows service."""


class SoftwareMetadataPort(Protocol):
    """The catalogue service: a software entry's Zenodo metadata block."""

    async def zenodo_metadata(
        self, token: str, software_id: str, version: str | None = None
    ) -> dict[str, Any]:
        """The ``metadata`` block of the entry's Zenodo export."""
        ...
