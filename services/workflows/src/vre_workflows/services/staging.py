"""Staging a run's inputs into its workspace: uploaded files, then Data Lake files.

A Data Lake file is hard-linked (or copied) from a POSIX replica readable on this machine when
the submission found one, and downloaded through the datalake service otherwise; a copy whose
checksum differs from the recorded one is discarded and the next source tried.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio

from vre_common.errors import VreError
from vre_workflows.backends.base import DatalakePort
from vre_workflows.models import Run, RunInput
from vre_workflows.workspace import RunPaths, digest_file, inside, link_or_copy


class InputStager:
    """Places a run's recorded inputs in its workspace and says how each got there."""

    def __init__(self, *, datalake: DatalakePort, prefer_link: bool) -> None:
        self._datalake = datalake
        self._prefer_link = prefer_link

    async def stage(
        self,
        run: Run,
        paths: RunPaths,
        *,
        token: str | None,
        replicas: dict[str, tuple[Path, ...]],
    ) -> list[RunInput]:
        """Every input in place; returns the inputs with ``staged_by`` set."""
        staged: list[RunInput] = []
        for item in run.inputs:
            target = inside(paths.workspace, item.path)
            if item.kind in ("upload", "inline"):
                source = inside(paths.uploads, item.path)
                await asyncio.to_thread(link_or_copy, source, target, prefer_link=False)
                staged.append(item.model_copy(update={"staged_by": "copy"}))
                continue
            how = await self._stage_did(item, target, token, replicas.get(item.path, ()))
            staged.append(item.model_copy(update={"staged_by": how}))
        return staged

    async def _stage_did(
        self, item: RunInput, target: Path, token: str | None, local_paths: tuple[Path, ...]
    ) -> str:
        for local_path in local_paths:
            try:
                how = await asyncio.to_thread(
                    link_or_copy, local_path, target, prefer_link=self._prefer_link
                )
            except OSError:
                continue
            if how == "copy":
                digest = await asyncio.to_thread(digest_file, target)
                if item.adler32 and digest.adler32 != item.adler32:
                    await asyncio.to_thread(target.unlink, True)
                    continue
            return how
        if token is None:
            raise VreError("no token to download Data Lake inputs with")
        assert item.did is not None
        scope, _, name = item.did.partition(":")
        target.parent.mkdir(parents=True, exist_ok=True)
        async with (
            self._datalake.download(token, scope, name) as body,
            await anyio.open_file(target, "wb") as handle,
        ):
            async for chunk in body:
                await handle.write(chunk)
        return "download"
