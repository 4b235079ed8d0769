"""RunEvents: provenance of runs (``run.started``, ``run.finished``) through an SQL outbox.

Each event is written to the ``provenance_outbox`` table in the same transaction as the run's
status change it describes, so both commit or neither does; an :class:`OutboxRelay` delivers
the rows to the gateway (in-process sink when mounted, ``POST /provenance/events`` over HTTP
otherwise) and deletes them once acknowledged. Without a sink nothing is recorded.

The entities are the run's Data Lake files: ``used`` are the input files it staged (as
resolved at submission, datasets expanded), ``generated`` the registered output files and
the dataset holding them.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import run_id
from vre_common.provenance.recorder import ServiceEvents
from vre_workflows.storage.runs import RunStore

log = structlog.get_logger("vre.workflows.provenance")


def _did(did: str) -> str:
    return "did:" + did


class RunEvents(ServiceEvents):
    """Records run events with the run's changes, and relays them (built with
    :meth:`for_service` on the ``provenance_outbox`` table)."""

    async def record(self, session: AsyncSession, run: str, kind: EventKind) -> None:
        """Add the event of ``kind`` about ``run`` to the session's transaction."""
        if not self.active:
            return
        facts = await RunStore(session).facts(run)
        if facts is None:
            return
        used = [_did(d) for d in facts.input_dids]
        generated: list[str] = []
        if kind is EventKind.RUN_FINISHED:
            generated = [_did(d) for d in facts.output_dids]
            if facts.output_dataset and facts.output_dids:
                generated.append(_did(facts.output_dataset))
        event = Event.create(
            kind,
            facts.owner,
            service="workflows",
            project=facts.project,
            activity=run_id(run),
            used=used,
            generated=generated,
            attributes={
                "status": facts.status,
                "name": facts.name,
                "backend": facts.backend,
                "workflow_type": facts.workflow_type,
                "spec_sha256": facts.spec_sha256,
            },
            labels={run_id(run): facts.name},
        ).model_copy(update={"actor_name": facts.owner_name})
        await self.outbox.add(session, event)
