"""The datalake's one table: its provenance outbox, when it lives in a database.

The datalake keeps nothing else of its own (Rucio holds the Data Lake). In the embedded mode
its outbox is a SQLite file; in the deployments it is this table in the datalake's own
database (``VRE_DATALAKE_PROVENANCE__OUTBOX=database``), so a pod that is scaled down or
rescheduled takes no pending event with it. Migrations: services/datalake/alembic.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from vre_common.db import NAMING_CONVENTION
from vre_common.provenance.outbox import outbox_table

METADATA = MetaData(naming_convention=NAMING_CONVENTION)
PROVENANCE_OUTBOX = outbox_table(METADATA)
