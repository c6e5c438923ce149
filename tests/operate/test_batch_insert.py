"""Evaluation and card rows go into SQLite as multi-row INSERTs: stored exactly as SQLAlchemy's own
`insert(table)` stores them, in a few statements per batch rather than one per row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, text

from cds_service.database import Database, migrate
from cds_service.records import _insert_rows, _table, store_batch
from cds_service.tables import CardRow, EvaluationRow
from tests.support.evaluations import evaluation_record


def _database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    migrate(db.engine)
    return db


@pytest.fixture
def two_databases(tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    ours, reference = _database(tmp_path / "ours.sqlite3"), _database(tmp_path / "reference.sqlite3")
    yield ours, reference
    ours.dispose()
    reference.dispose()


def _evaluation_rows(count: int) -> list[dict[str, Any]]:
    start = datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=UTC)
    return [
        {
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "created_at": start + timedelta(milliseconds=n),
            "service_id": "vertebral-augmentation-select",
            "hook": "order-select",
            "hook_instance": f"hook-{n}",
            "patient_hash": f"{n:064x}",
            "thresholds_version": 3,
            "procedure": "kyphoplasty" if n % 2 else None,
            "level_count": 3 if n % 2 else None,
            "rules_run": ["eligibility", "bleeding-anticoagulant"],
            "outcomes": [{"rule": "eligibility", "card": f"card-{n}", "criteria": {"pain": "met", "ß": "ü"}}],
            "data": {"prefetched": ["conditions"], "failed": [], "fetch_ms": 0.0, "nested": {"a": [1, 2.5]}},
            "timings_ms": {"total": 1.25},
        }
        for n in range(count)
    ]


def _card_rows(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "uuid": f"card-{e['id']}-{k}",
            "evaluation_id": e["id"],
            "rule": "eligibility",
            "indicator": "info",
            "suggestion_uuids": [f"suggestion-{k}"] if k else [],
        }
        for e in evaluations
        for k in range(3)
    ]


def _stored(db: Database, table: str) -> list[tuple[Any, ...]]:
    """Every stored value as SQLite holds it (no type processing on the way out)."""
    with db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]


def test_rows_are_stored_exactly_as_sqlalchemy_insert_stores_them(
    two_databases: tuple[Database, Database],
) -> None:
    ours, reference = two_databases
    evaluations = _evaluation_rows(200)  # more rows than one statement may carry: several statements
    cards = _card_rows(evaluations)
    with ours.engine.begin() as connection:
        _insert_rows(connection, _table(EvaluationRow), evaluations)
        _insert_rows(connection, _table(CardRow), cards)
    with reference.engine.begin() as connection:
        connection.execute(insert(EvaluationRow), evaluations)
        connection.execute(insert(CardRow), cards)

    assert len(_stored(ours, "evaluations")) == 200
    assert len(_stored(ours, "cards")) == 600
    assert _stored(ours, "evaluations") == _stored(reference, "evaluations")
    assert _stored(ours, "cards") == _stored(reference, "cards")
    with ours.session() as session:  # and the ORM reads them back as written
        row = session.get(EvaluationRow, evaluations[7]["id"])
        assert row is not None
        assert row.outcomes == evaluations[7]["outcomes"]
        assert row.data == evaluations[7]["data"]
        assert row.created_at.replace(tzinfo=UTC) == evaluations[7]["created_at"]


def test_a_row_without_a_value_for_every_column_is_refused(two_databases: tuple[Database, Database]) -> None:
    ours, _ = two_databases
    row = _evaluation_rows(1)[0]
    del row["timings_ms"]
    with pytest.raises(KeyError), ours.engine.begin() as connection:
        _insert_rows(connection, _table(EvaluationRow), [row])
    assert _stored(ours, "evaluations") == []


def test_a_batch_takes_a_few_statements_not_one_per_row(tmp_path: Path) -> None:
    db = _database(tmp_path / "statements.sqlite3")
    statements: list[tuple[str, bool]] = []

    def remember(
        _connection: Connection, _cursor: object, sql: str, _parameters: object, _context: object, many: bool
    ) -> None:
        statements.append((sql.split("(", 1)[0].strip(), many))

    event.listen(db.engine, "before_cursor_execute", remember)
    records = [evaluation_record(n, cards=3) for n in range(20)]
    store_batch(db, records)
    inserts = [(sql, many) for sql, many in statements if sql.startswith("INSERT")]
    assert inserts == [("INSERT INTO evaluations", False), ("INSERT INTO cards", False)]
    db.dispose()
