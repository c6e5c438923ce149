"""A batch of evaluation rows goes in as one executemany per table (SQLAlchemy Core), and reads back as
it was written."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, event, func, select

from cds_service.storage.database import Database, migrate
from cds_service.storage.records import store_batch
from cds_service.storage.tables import CardRow, EvaluationRow
from tests.support.evaluations import evaluation_record


def _database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    migrate(db.engine)
    return db


def test_a_batch_takes_one_executemany_per_table_not_one_statement_per_row(tmp_path: Path) -> None:
    db = _database(tmp_path / "statements.sqlite3")
    statements: list[tuple[str, bool]] = []

    def remember(
        _connection: Connection, _cursor: object, sql: str, _parameters: object, _context: object, many: bool
    ) -> None:
        statements.append((sql.split("(", 1)[0].strip(), many))

    event.listen(db.engine, "before_cursor_execute", remember)
    records = [evaluation_record(n, cards=3) for n in range(20)]
    ids = store_batch(db, records)
    inserts = [(sql, many) for sql, many in statements if sql.startswith("INSERT")]
    assert inserts == [("INSERT INTO evaluations", True), ("INSERT INTO cards", True)]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(EvaluationRow)) == 20
        assert session.scalar(select(func.count()).select_from(CardRow)) == 60
        row = session.get(EvaluationRow, ids[7])
        assert row is not None
        assert row.hook_instance == records[7].hook_instance
        assert row.outcomes == records[7].outcomes
        assert row.data == records[7].data
        assert row.rules_run == list(records[7].rules_run)
    db.dispose()
