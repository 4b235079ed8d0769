"""The run record a deposition of a run carries (``vre-run-record.json``).

A deposition made from a run publishes, beside the outputs, the run's record as the
workflows service gives it (vre_common.run_record): the specification and its sha256,
parameters, images, inline code, and every input and output with DID, size, adler32 and md5.
The record is written into the Data Lake next to the outputs first (so it has a DID, gets the
DOI written onto it and flows through the same checked upload as every other file), and the
deposition's ``notes`` say what it is, so a reproduction needs nothing but the DOI.
"""

from __future__ import annotations

import hashlib
from typing import Any

from vre_common.errors import NotFoundError
from vre_common.run_record import RUN_RECORD_FILENAME, RUN_RECORD_SCHEMA_VERSION, RunRecord
from vre_zenodo.backends.base import DatalakePort
from vre_zenodo.storage.depositions import NewDepositionFile

NOTE_PREFIX = "Run record:"


def record_note(record: RunRecord) -> str:
    """The line the deposition's ``notes`` carry about the record file."""
    return (
        f"{NOTE_PREFIX} {RUN_RECORD_FILENAME} (vre-run-record, schema version "
        f"{RUN_RECORD_SCHEMA_VERSION}) describes VRE run {record.run_id}: its specification "
        f"(sha256 {record.spec_sha256}), parameters, images, inputs and outputs with their "
        "checksums. A VRE reproduces the result from this DOI alone (POST /zenodo/reproductions)."
    )


def describe(metadata: dict[str, Any], record: RunRecord) -> dict[str, Any]:
    """``metadata`` with the record's note appended to ``notes`` (once)."""
    note = record_note(record)
    notes = str(metadata.get("notes") or "")
    lines = [line for line in notes.splitlines() if not line.startswith(NOTE_PREFIX)]
    return {**metadata, "notes": "\n".join([*(line for line in lines if line), note])}


def _location(record: RunRecord, output_dids: list[str]) -> tuple[str, str]:
    """Scope and folder of the run's outputs (the workflows service's dataset layout)."""
    for did in [*(o.did for o in record.outputs if o.did), *output_dids]:
        scope, _, name = did.partition(":")
        folder, slash, _ = name.partition("/")
        if slash:
            return scope, folder
    scope = output_dids[0].partition(":")[0]
    return scope, ""


async def store_record(
    datalake: DatalakePort, record: RunRecord, output_dids: list[str]
) -> NewDepositionFile:
    """The record as a Data Lake file beside the outputs (reused when already there with the
    same bytes), ready to join the deposition as ``vre-run-record.json``."""
    data = record.to_bytes()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    scope, folder = _location(record, output_dids)
    prefix = f"{folder}/" if folder else f"{record.run_id}-"
    for name in (f"{prefix}{RUN_RECORD_FILENAME}", f"{prefix}vre-run-record-{md5[:12]}.json"):
        try:
            existing = await datalake.get_did(scope, name)
        except NotFoundError:
            await datalake.upload(scope, name, data, md5=md5, size=len(data))
            break
        if existing.md5 == md5:
            break
    return NewDepositionFile(
        scope=scope, name=name, filename=RUN_RECORD_FILENAME, size=len(data), md5=md5
    )


def join_record(files: list[NewDepositionFile], record_file: NewDepositionFile) -> None:
    """Add the record to the files; an output that happens to have its name in the bucket
    takes its full DID name instead (the record's name is how a reproduction finds it)."""
    for f in files:
        if f.filename == record_file.filename:
            f.filename = f"{f.scope}_{f.name.replace('/', '_')}"
    files.append(record_file)
