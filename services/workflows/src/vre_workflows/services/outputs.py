"""A run's declared outputs: collected from the workspace, recorded, registered in the Data Lake.

Outputs land in one dataset named after the run, beside a provenance manifest
(``vre-run.json``); the dataset also carries the provenance as metadata where the Data Lake
takes it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from vre_common.db import Database, utcnow
from vre_common.errors import BackendUnavailableError, InvalidInputError, VreError
from vre_workflows.backends.base import DatalakePort
from vre_workflows.models import OutputDestination, Run, RunOutput
from vre_workflows.spec import declared_outputs
from vre_workflows.storage.runs import RunStore
from vre_workflows.workspace import RunPaths, digest_file, inside


class OutputsMissingError(VreError):
    """Declared outputs were not produced."""

    status = 422
    slug = "outputs-missing"
    title = "Declared outputs missing"


class OutputsNotRegisteredError(BackendUnavailableError):
    """The run succeeded but its outputs could not be registered in the Data Lake."""

    slug = "outputs-not-registered"
    title = "Outputs not registered"


class OutputRegistrar:
    """Collects, records and registers a run's declared outputs."""

    def __init__(self, *, db: Database, datalake: DatalakePort, data_dir: Path) -> None:
        self.db = db
        self._datalake = datalake
        self._data_dir = data_dir

    def paths(self, run_id: str) -> RunPaths:
        """The run's folders."""
        return RunPaths.of(self._data_dir, run_id)

    async def collect(
        self, spec: dict[str, Any], paths: RunPaths, *, strict: bool
    ) -> list[RunOutput]:
        """The declared outputs found in the workspace, with checksums (422 if any is missing
        and ``strict``)."""
        files, directories = declared_outputs(spec)
        found: dict[str, Path] = {}
        missing: list[str] = []
        for rel in files:
            try:
                path = inside(paths.workspace, rel)
            except ValueError:
                missing.append(rel)
                continue
            if path.is_file():
                found[rel] = path
            else:
                missing.append(rel)
        for rel in directories:
            try:
                folder = inside(paths.workspace, rel)
            except ValueError:
                missing.append(rel + "/")
                continue
            if not folder.is_dir():
                missing.append(rel + "/")
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                found[path.relative_to(paths.workspace.resolve()).as_posix()] = path
        if missing and strict:
            raise OutputsMissingError("declared output(s) were not produced: " + ", ".join(missing))
        outputs = []
        for rel, path in sorted(found.items()):
            digest = await asyncio.to_thread(digest_file, path)
            outputs.append(
                RunOutput(path=rel, bytes=digest.bytes, adler32=digest.adler32, md5=digest.md5)
            )
        return outputs

    async def record(self, run_id: str, outputs: list[RunOutput]) -> None:
        """Record the outputs found (not yet registered)."""
        async with self.db.transaction() as session:
            await RunStore(session).set_outputs(run_id, outputs)

    async def register(
        self,
        run: Run,
        destination: OutputDestination,
        outputs: list[RunOutput],
        token: str | None,
    ) -> None:
        """Outputs → the Data Lake: one dataset named after the run, with its provenance.

        The provenance travels twice: as a manifest file ``vre-run.json`` registered in the
        dataset (works on every Rucio), and as metadata keys on the dataset (needs Rucio's
        JSON metadata plugin, absent on SQLite: then a warning is recorded on the run).
        Metadata values are scalars: lists are joined with commas, which neither DIDs nor
        image names contain.
        """
        if token is None:
            raise OutputsNotRegisteredError(
                "the outputs could not be registered: the submitter's token is not available "
                "(the service restarted and none was kept)"
            )
        paths = self.paths(run.id)
        scope = destination.scope
        dataset = destination.dataset or f"{run.name}-{run.id[:8]}"
        dataset_did = f"{scope}:{dataset}"
        await self._datalake.create_dataset(token, scope, dataset, {})
        async with self.db.transaction() as session:
            await RunStore(session).update_run(run.id, output_dataset=dataset_did)
        registered: list[RunOutput] = []
        for out in outputs:
            result = await self._datalake.upload(
                token,
                scope,
                f"{dataset}/{out.path}",
                inside(paths.workspace, out.path),
                md5=out.md5,
                size=out.bytes,
                rse=destination.rse_expression,
                dataset=dataset_did,
                metadata={},
            )
            if result.adler32 != out.adler32 or result.md5 != out.md5:
                raise VreError(f"the Data Lake recorded other checksums for {out.path}")
            registered.append(out.model_copy(update={"did": result.did, "registered_at": utcnow()}))
            async with self.db.transaction() as session:
                await RunStore(session).set_outputs(run.id, [registered[-1]])

        manifest = paths.root / "vre-run.json"
        await asyncio.to_thread(
            manifest.write_text, json.dumps(_manifest(run, registered), indent=2), "utf-8"
        )
        digest = await asyncio.to_thread(digest_file, manifest)
        names = {o.path for o in outputs}
        manifest_name = "vre-run.json" if "vre-run.json" not in names else ".vre-run.json"
        provenance = await self._datalake.upload(
            token,
            scope,
            f"{dataset}/{manifest_name}",
            manifest,
            md5=digest.md5,
            size=digest.bytes,
            rse=destination.rse_expression,
            dataset=dataset_did,
            metadata={},
        )
        async with self.db.transaction() as session:
            await RunStore(session).update_run(run.id, provenance_did=provenance.did)

        metadata: dict[str, Any] = {
            "run_id": run.id,
            "spec_sha256": run.spec_sha256,
            "input_dids": ",".join(
                sorted({i.did for i in run.inputs if i.kind == "did" and i.did})
            ),
            "images": ",".join(run.images),
            "workflow_type": run.workflow_type,
        }
        try:
            await self._datalake.set_metadata(token, scope, dataset, metadata)
        except InvalidInputError as exc:
            async with self.db.transaction() as session:
                await RunStore(session).add_warning(
                    run.id,
                    f"the Data Lake did not take the provenance metadata on {dataset_did} "
                    f"({exc.detail}); the provenance is in {provenance.did}",
                )
        if destination.lifetime:
            lifetime = {"lifetime": destination.lifetime}
            for did in [dataset_did, provenance.did, *(o.did for o in registered if o.did)]:
                did_scope, _, did_name = did.partition(":")
                await self._datalake.set_metadata(token, did_scope, did_name, lifetime)


def _manifest(run: Run, outputs: list[RunOutput]) -> dict[str, Any]:
    """The provenance manifest registered with a run's outputs (vre-run.json)."""
    return {
        "vre_run_manifest": 1,
        "run_id": run.id,
        "name": run.name,
        "owner": run.owner,
        "backend": run.backend,
        "backend_ids": run.backend_ids,
        "workflow_type": run.workflow_type,
        "spec_sha256": run.spec_sha256,
        "parameters": run.parameters,
        "images": run.images,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "inputs": [
            i.model_dump(include={"kind", "did", "path", "bytes", "adler32", "md5"})
            for i in run.inputs
        ],
        "outputs": [
            o.model_dump(include={"path", "did", "bytes", "adler32", "md5"}) for o in outputs
        ],
        "steps": [
            s.model_dump(include={"name", "image", "execution", "commands", "exit_code"})
            for s in run.steps
        ],
    }
