"""The evaluation writer: rows land just after the answer, several per transaction under load; feedback
that arrives first is linked when its card's row lands; a failing database costs rows, never answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from cds_service.hooks.feedback import store_feedback
from cds_service.hooks.models import FeedbackItem
from cds_service.storage.database import Database, migrate
from cds_service.storage.records import _SQLITE_WRITER
from cds_service.storage.tables import CardRow, EvaluationRow, FeedbackRow
from cds_service.storage.writer import EvaluationWriter
from tests.support.app import client_for, make_app, sample
from tests.support.evaluations import evaluation_record

SELECT = "/cds-services/vertebral-augmentation-select"
FEEDBACK = SELECT + "/feedback"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'writer.sqlite3'}")
    migrate(db.engine)
    yield db
    db.dispose()


def count(database: Database, table: type[EvaluationRow] | type[CardRow] | type[FeedbackRow]) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def linked_feedback(database: Database) -> tuple[str, str | None]:
    """(hook instance of the evaluation, rule) that the one stored feedback item is linked to."""
    with database.session() as session:
        linked = session.scalars(select(FeedbackRow)).one()
        row = session.get(EvaluationRow, linked.evaluation_id)
        assert row is not None, "the feedback is not linked to an evaluation"
        return row.hook_instance, linked.rule


def sample_value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_flush_waits_until_every_submitted_row_is_in_the_database(database: Database) -> None:
    writer = EvaluationWriter(database)
    for n in range(20):
        writer.submit(evaluation_record(n))
    assert writer.flush(timeout=5)
    assert (count(database, EvaluationRow), count(database, CardRow)) == (20, 20)
    writer.close()


def test_rows_that_queue_up_meanwhile_are_written_in_one_transaction(database: Database) -> None:
    writer = EvaluationWriter(database)
    transactions = sample_value("vcds_evaluation_batch_rows_count")
    with _SQLITE_WRITER:  # the database is busy: the rows of 50 calls queue up behind the first
        for n in range(50):
            writer.submit(evaluation_record(n))
        time.sleep(0.05)
    assert writer.flush(timeout=5)
    assert count(database, EvaluationRow) == 50
    assert sample_value("vcds_evaluation_batch_rows_count") - transactions <= 2
    writer.close()


def wait_for_rows(database: Database, rows: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if count(database, EvaluationRow) >= rows:
            return True
        time.sleep(0.01)
    return False


def test_the_thread_lingers_for_more_rows_and_a_full_batch_ends_the_wait(database: Database) -> None:
    # Rows after the first do not wake the thread (it lingers for them); a full batch does.
    writer = EvaluationWriter(database, linger_seconds=30.0, max_batch=5)
    for n in range(4):
        writer.submit(evaluation_record(n))
    assert not wait_for_rows(database, 1, seconds=0.3)  # still lingering: nothing written yet
    writer.submit(evaluation_record(4))  # the fifth row fills the batch
    assert wait_for_rows(database, 5, seconds=5.0)
    writer.close()


def test_a_row_after_an_idle_spell_is_written_after_the_linger(database: Database) -> None:
    writer = EvaluationWriter(database, linger_seconds=0.02)
    writer.submit(evaluation_record(0))
    assert wait_for_rows(database, 1, seconds=5.0)
    time.sleep(0.1)  # the thread waits for a first row again
    writer.submit(evaluation_record(1))
    assert wait_for_rows(database, 2, seconds=5.0)
    writer.close()


def test_feedback_stored_before_its_card_row_is_linked_when_the_row_lands(database: Database) -> None:
    item = FeedbackItem.model_validate(
        {"card": "card-7", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    )
    assert store_feedback(database, "vertebral-augmentation-select", [item]) == (1, 0)
    with database.session() as session:
        early = session.scalars(select(FeedbackRow)).one()
        assert (early.evaluation_id, early.rule) == (None, None)
    writer = EvaluationWriter(database)
    writer.submit(evaluation_record(7))
    assert writer.flush(timeout=5)
    assert linked_feedback(database) == ("hook-7", "copd-multilevel")
    writer.close()


def test_feedback_that_raced_its_cards_batch_is_linked_by_the_next_batch(database: Database) -> None:
    """Worker A's batch wrote the card while worker B stored the feedback without finding it (neither saw
    the other's uncommitted row): the next batch written anywhere links it."""
    writer = EvaluationWriter(database)
    writer.submit(evaluation_record(1))
    assert writer.flush(timeout=5)
    with database.session() as session:  # as worker B stored it a moment earlier, unlinked
        session.add(
            FeedbackRow(
                dedupe_key="raced",
                received_at=datetime.now(UTC),
                service_id="vertebral-augmentation-select",
                card_uuid="card-1",
                evaluation_id=None,
                rule=None,
                outcome="accepted",
                accepted_suggestions=[],
                override_reason_system=None,
                override_reason_code=None,
                has_user_comment=False,
                outcome_timestamp=datetime.now(UTC),
            )
        )
    writer.submit(evaluation_record(2))
    assert writer.flush(timeout=5)
    assert linked_feedback(database) == ("hook-1", "copd-multilevel")
    writer.close()


def test_feedback_for_a_card_never_issued_stays_unlinked(database: Database) -> None:
    item = FeedbackItem.model_validate(
        {"card": "not-a-card-of-ours", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
    )
    store_feedback(database, "vertebral-augmentation-select", [item])
    writer = EvaluationWriter(database)
    writer.submit(evaluation_record(3))
    assert writer.flush(timeout=5)
    with database.session() as session:
        row = session.scalars(select(FeedbackRow)).one()
        assert (row.evaluation_id, row.rule) == (None, None)
    writer.close()


def test_close_writes_what_is_queued_and_later_rows_are_written_at_once(database: Database) -> None:
    writer = EvaluationWriter(database)
    closer = threading.Thread(target=writer.close, kwargs={"timeout": 10})
    with _SQLITE_WRITER:  # the database is busy: the rows wait in the queue
        for n in range(5):
            writer.submit(evaluation_record(n))
        closer.start()
        time.sleep(0.1)
        assert closer.is_alive()  # close waits for the queue
    closer.join(timeout=10)
    assert not closer.is_alive()
    assert count(database, EvaluationRow) == 5
    writer.submit(evaluation_record(99))  # after close: in the caller's thread
    assert count(database, EvaluationRow) == 6


def test_the_thread_stops_when_idle_and_the_next_row_starts_another(database: Database) -> None:
    writer = EvaluationWriter(database, idle_seconds=0.05)
    writer.submit(evaluation_record(1))
    assert writer.flush(timeout=5)
    deadline = time.monotonic() + 5
    while writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer._thread is None
    writer.submit(evaluation_record(2))
    assert writer.flush(timeout=5)
    assert count(database, EvaluationRow) == 2
    writer.close()


def test_a_failing_database_drops_rows_with_a_count_and_a_log_line(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("DROP TABLE cards"))
    writer = EvaluationWriter(database)
    dropped = sample_value("vcds_evaluation_rows_dropped_total", {"reason": "database error"})
    writer.submit(evaluation_record(1))
    assert writer.flush(timeout=5)
    after = sample_value("vcds_evaluation_rows_dropped_total", {"reason": "database error"})
    assert after - dropped == 1
    assert count(database, EvaluationRow) == 0  # one transaction: no evaluation without its cards
    message = next(r for r in caplog.records if r.name == "vertebral_cds.storage")
    assert message.getMessage() == "evaluation rows not stored: the database refused the write"
    assert "hook-1" not in caplog.text
    writer.close()


def test_a_full_queue_drops_the_row_and_never_blocks_the_call(database: Database) -> None:
    writer = EvaluationWriter(database, max_queued=3)
    dropped = sample_value("vcds_evaluation_rows_dropped_total", {"reason": "queue full"})
    with _SQLITE_WRITER:
        started = time.monotonic()
        for n in range(10):
            writer.submit(evaluation_record(n))
        assert time.monotonic() - started < 1
    assert writer.flush(timeout=5)
    dropped_now = sample_value("vcds_evaluation_rows_dropped_total", {"reason": "queue full"}) - dropped
    assert dropped_now >= 4  # ten rows, at most three queued plus the few the thread took before the lock
    assert count(database, EvaluationRow) == 10 - dropped_now
    writer.close()


def test_the_clinician_gets_the_cards_when_the_evaluation_cannot_be_stored(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = client_for(app)
    with app.state.database.engine.begin() as connection:
        connection.execute(text("DROP TABLE cards"))
    dropped = sample_value("vcds_evaluation_rows_dropped_total", {"reason": "database error"})
    response = client.post(SELECT, json=sample("order-select.json"))
    assert response.status_code == 200
    assert "copd-multilevel" in {c["source"]["topic"]["code"] for c in response.json()["cards"]}
    app.state.flow.flush_records()
    assert sample_value("vcds_evaluation_rows_dropped_total", {"reason": "database error"}) - dropped == 1


def test_feedback_right_after_the_answer_is_linked_to_its_evaluation_record(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with client_for(app) as client:
        card = client.post(SELECT, json=sample("order-select.json")).json()["cards"][0]
        feedback = {
            "feedback": [
                {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
            ]
        }
        assert client.post(FEEDBACK, json=feedback).json()["stored"] == 1
        with app.state.database.session() as session:
            row = session.scalars(select(FeedbackRow)).one()
            assert row.evaluation_id is not None
            assert row.rule == card["source"]["topic"]["code"]


def test_the_app_writes_every_row_before_it_stops(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with client_for(app) as client:
        for _ in range(3):
            assert client.post(SELECT, json=sample("order-select.json")).status_code == 200
    assert app.state.flow.writer.queued == 0
    assert count(app.state.database, EvaluationRow) == 3
