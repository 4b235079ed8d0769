"""Create the Rucio schema, base VO and root account (run by the Rucio server venv's Python).

Idempotent: a database that already has the schema keeps it, an existing root account is
kept. ``RUCIO_CONFIG`` must point at the server configuration. Prints one JSON line saying
what was created.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    """Bring the database to a usable state and report what was done."""
    from rucio.common.config import config_get
    from rucio.common.constants import DEFAULT_VO
    from rucio.common.types import InternalAccount
    from rucio.db.sqla import models
    from rucio.db.sqla.session import get_engine, get_session
    from rucio.db.sqla.util import (
        build_database,
        create_base_vo,
        create_root_account,
        is_old_db,
    )
    from sqlalchemy import inspect, select

    schema = config_get("database", "schema", raise_exception=False, check_config_table=False)
    engine = get_engine()
    report: dict[str, object] = {
        "schema_created": False,
        "vo_created": False,
        "root_created": False,
    }

    if not inspect(engine).has_table(models.AlembicVersion.__tablename__, schema=schema):
        build_database()
        report["schema_created"] = True
    elif is_old_db():
        print(
            "the database holds a Rucio schema of another version; upgrade it with alembic",
            file=sys.stderr,
        )
        return 2

    session_factory = get_session()
    with session_factory() as session:
        has_vo = session.execute(select(models.VO.vo).where(models.VO.vo == DEFAULT_VO)).first()
        has_root = session.execute(
            select(models.Account.account).where(models.Account.account == InternalAccount("root"))
        ).first()
    if has_vo is None:
        create_base_vo()
        report["vo_created"] = True
    if has_root is None:
        create_root_account()
        report["root_created"] = True

    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
