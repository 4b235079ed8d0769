"""ReproductionStore: reproduction jobs, their checks, comparison and log."""

from __future__ import annotations

import uuid
from typing import Any

from vre_common.db import utcnow
from vre_common.jobs import JobStore
from vre_zenodo.models import Reproduction
from vre_zenodo.storage.schema import ReproductionRow

ACTIVE_STATES = ("queued", "checking", "running", "comparing")


def _public(row: ReproductionRow) -> Reproduction:
    return Reproduction.model_validate(row, from_attributes=True)


class ReproductionStore(JobStore[ReproductionRow, Reproduction]):
    """Rows of ``reproductions`` as :class:`Reproduction` models."""

    row = ReproductionRow
    active_states = ACTIVE_STATES

    def to_model(self, row: ReproductionRow) -> Reproduction:
        return _public(row)

    def interrupted_values(self) -> dict[str, Any]:
        return {"state": "interrupted", "finished_at": utcnow()}

    async def create(
        self,
        *,
        owner: str,
        owner_name: str,
        doi: str,
        record_id: int,
        project: str | None,
        tolerance: float,
        original_run_id: str | None,
    ) -> Reproduction:
        """A new queued reproduction."""
        row = ReproductionRow(
            id=str(uuid.uuid4()),
            owner=owner,
            owner_name=owner_name,
            doi=doi,
            record_id=record_id,
            project=project,
            state="queued",
            tolerance=tolerance,
            original_run_id=original_run_id,
            inputs=[],
            files=[],
            log=[],
            created_at=utcnow(),
        )
        self.session.add(row)
        await self.session.flush()
        return _public(row)

    async def log(self, reproduction_id: str) -> list[str]:
        """The job's log lines."""
        row = await self.session.get(ReproductionRow, reproduction_id)
        return list(row.log) if row is not None else []

    async def update(self, reproduction_id: str, *, line: str | None = None, **values: Any) -> None:
        """Set fields; append ``line`` to the log."""
        row = await self.session.get(ReproductionRow, reproduction_id)
        if row is None:
            return
        for key, value in values.items():
            setattr(row, key, value)
        if values.get("state") in ("finished", "cancelled", "interrupted"):
            row.finished_at = utcnow()
        if line is not None:
            row.log = [*row.log, f"{utcnow().isoformat(timespec='seconds')} {line}"]
        await self.session.flush()
