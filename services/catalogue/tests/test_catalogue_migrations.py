"""Migrations: the app migrates at start, or refuses to start on an out-of-date schema (that
models and migrations agree is tests/test_migrations.py)."""

from __future__ import annotations

import pytest

from vre_catalogue.config import CatalogueSettings
from vre_catalogue.main import create_app
from vre_common.migrations import SchemaOutOfDateError
from vre_common.settings import DatabaseSettings
from vre_common.testing import TestIssuer, app_client


async def test_verify_mode_refuses_an_unmigrated_database(
    empty_db_url: str, issuer: TestIssuer
) -> None:
    settings = CatalogueSettings(
        auth=issuer.auth_settings(),
        database=DatabaseSettings(url=empty_db_url),
        migrations="verify",
    )
    app = create_app(settings, validator=issuer.validator())
    with pytest.raises(SchemaOutOfDateError, match="vre-migrate catalogue"):
        async with app_client(app):
            pass


async def test_upgrade_mode_migrates_then_verify_mode_starts(
    empty_db_url: str, issuer: TestIssuer
) -> None:
    for mode in ("upgrade", "verify"):
        settings = CatalogueSettings(
            auth=issuer.auth_settings(),
            database=DatabaseSettings(url=empty_db_url),
            migrations=mode,  # type: ignore[arg-type]
        )
        async with app_client(create_app(settings, validator=issuer.validator())) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            (database,) = ready.json()["dependencies"]
            assert (database["name"], database["up"]) == ("database", True)


async def test_in_memory_sqlite_default(issuer: TestIssuer) -> None:
    """The default settings (in-memory SQLite) migrate through the app's own connection."""
    settings = CatalogueSettings(auth=issuer.auth_settings())
    async with app_client(create_app(settings, validator=issuer.validator())) as client:
        assert (await client.get("/software/search")).json()["total"] == 0
