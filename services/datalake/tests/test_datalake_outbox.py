"""The datalake's outbox in its own database (the deployments' choice): an upload's event
goes through the table to the sink, the schema is the migrations', and a stale schema stops
the start instead of losing events.

The real Rucio of the session; the outbox database is SQLite here (the same SQLAlchemy and
Alembic code runs on PostgreSQL in the deployments).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.datalake.tests.conftest import settings_params
from services.datalake.tests.datalake_support import make_settings
from vre_common.link import GatewayLink
from vre_common.migrations import SchemaOutOfDateError
from vre_common.provenance.events import Event, EventKind, IngestResult
from vre_common.provenance.ids import did_id
from vre_common.provenance.outbox import PENDING, READY, SqlOutbox
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client
from vre_datalake.config import DatalakeSettings, ProvenanceSettings
from vre_datalake.main import create_app
from vre_rucio_local import LocalRucio


class CollectingSink:
    """Stands in for the gateway's ingest (the relay's only peer)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def deliver(self, events: Sequence[Event]) -> IngestResult:
        self.events.extend(events)
        return IngestResult(accepted=len(events), duplicates=0)


def outbox_settings(
    rucio_server: LocalRucio, issuer: TestIssuer, tmp_path: Path, migrations: str
) -> DatalakeSettings:
    base = make_settings(**settings_params(rucio_server, issuer))
    return base.model_copy(
        update={
            "database": DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/datalake.db"),
            "migrations": migrations,
            "provenance": ProvenanceSettings(outbox="database", relay_interval_seconds=0.1),
        }
    )


async def test_an_upload_event_travels_through_the_table(
    rucio_server: LocalRucio, issuer: TestIssuer, tmp_path: Path
) -> None:
    sink = CollectingSink()
    app = create_app(
        outbox_settings(rucio_server, issuer, tmp_path, "upgrade"),
        link=GatewayLink(validator=issuer.validator(), event_sink=sink),
    )
    async with app_client(app, timeout=60) as client:
        recorder = app.state.factory.provenance
        assert isinstance(recorder.outbox, SqlOutbox)
        name = f"outbox/{tmp_path.name}.dat"
        put = await client.put(
            f"/files/user.alice/{name}", content=b"x" * 100, headers=issuer.headers()
        )
        assert put.status_code == 201, put.text
        for _ in range(200):
            if sink.events:
                break
            await asyncio.sleep(0.05)
        assert [e.generated for e in sink.events] == [[did_id("user.alice", name)]]
        assert sink.events[0].kind is EventKind.UPLOAD
        for _ in range(100):  # delivered events leave the table
            if await recorder.outbox.count(READY) == 0:
                break
            await asyncio.sleep(0.05)
        assert (await recorder.outbox.count(READY), await recorder.outbox.count(PENDING)) == (0, 0)


async def test_a_stale_schema_stops_the_start(
    rucio_server: LocalRucio, issuer: TestIssuer, tmp_path: Path
) -> None:
    app = create_app(
        outbox_settings(rucio_server, issuer, tmp_path, "verify"),
        link=GatewayLink(validator=issuer.validator(), event_sink=CollectingSink()),
    )
    with pytest.raises(SchemaOutOfDateError, match="vre-migrate datalake"):
        async with app_client(app):
            pass
