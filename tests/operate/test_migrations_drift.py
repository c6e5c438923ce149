"""The migrations build exactly the tables the code declares: Alembic's `compare_metadata` between the
migrated database and `tables.Base.metadata` finds nothing to change, on SQLite and on PostgreSQL. A
column added to a table class without a migration (or the other way round) fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from cds_service.storage.database import make_engine, migrate
from cds_service.storage.tables import Base


def _drift(engine: Engine) -> list[object]:
    migrate(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences: list[object] = compare_metadata(context, Base.metadata)
    engine.dispose()
    return differences


def test_sqlite_tables_are_what_the_code_declares(tmp_path: Path) -> None:
    assert _drift(make_engine(f"sqlite:///{tmp_path / 'drift.sqlite3'}")) == []


@pytest.mark.integration
def test_postgres_tables_are_what_the_code_declares(pg_url: str) -> None:
    assert _drift(make_engine(pg_url)) == []
