"""Database lifecycle: migrations by command (and at start-up), retention of evaluation records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cds_service.cli.command import main
from cds_service.storage.database import Database
from cds_service.storage.tables import CardRow, EvaluationRow, FeedbackRow
from tests.support.app import make_app


def add_evaluation(database: Database, evaluation_id: str, created: datetime) -> None:
    with database.session() as session:
        session.add(
            EvaluationRow(
                id=evaluation_id,
                created_at=created,
                service_id="vertebral-augmentation-select",
                hook="order-select",
                hook_instance="h",
                patient_hash="x" * 64,
                thresholds_version=1,
                procedure=None,
                level_count=None,
                rules_run=[],
                outcomes=[],
                data={},
                timings_ms={},
            )
        )
        session.flush()
        session.add(
            CardRow(
                uuid=f"card-{evaluation_id}",
                evaluation_id=evaluation_id,
                rule="eligibility",
                indicator="info",
                suggestion_uuids=[],
            )
        )
        session.add(
            FeedbackRow(
                dedupe_key=f"k-{evaluation_id}",
                received_at=created,
                service_id="vertebral-augmentation-select",
                card_uuid=f"card-{evaluation_id}",
                evaluation_id=evaluation_id,
                rule="eligibility",
                outcome="overridden",
                accepted_suggestions=[],
                override_reason_system=None,
                override_reason_code=None,
                has_user_comment=False,
                outcome_timestamp=created,
            )
        )


def counts(database: Database) -> tuple[int, int, int]:
    with database.session() as session:
        return (
            session.scalar(select(func.count()).select_from(EvaluationRow)) or 0,
            session.scalar(select(func.count()).select_from(CardRow)) or 0,
            session.scalar(select(func.count()).select_from(FeedbackRow)) or 0,
        )


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'lifecycle.sqlite3'}"
    monkeypatch.setenv("VCDS_DATABASE_URL", url)
    return url


def test_db_current_reports_an_unmigrated_database_and_upgrade_migrates_it(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "current"]) == 1
    assert "(empty)" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "-> 0" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert main(["db", "upgrade"]) == 0  # idempotent


def test_db_purge_deletes_records_past_the_retention_period_only(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    database = Database(database_url)
    now = datetime.now(UTC)
    add_evaluation(database, "old-evaluation", now - timedelta(days=40))
    add_evaluation(database, "new-evaluation", now - timedelta(days=5))
    assert counts(database) == (2, 2, 2)
    assert main(["db", "purge", "--days", "30"]) == 0
    assert "purged 1 evaluations and 1 feedback items older than 30 days" in capsys.readouterr().out
    assert counts(database) == (1, 1, 1)
    with database.session() as session:
        assert session.scalars(select(EvaluationRow.id)).all() == ["new-evaluation"]
    database.dispose()


def test_retention_zero_keeps_everything(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VCDS_EVALUATION_RETENTION_DAYS", "0")
    assert main(["db", "purge"]) == 0
    assert "keep forever" in capsys.readouterr().out


def test_start_up_applies_the_retention_setting(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    database: Database = app.state.database
    now = datetime.now(UTC)
    add_evaluation(database, "ancient", now - timedelta(days=400))
    add_evaluation(database, "recent", now - timedelta(days=10))
    make_app(tmp_path, evaluation_retention_days=365)  # a restart on the same store
    assert counts(database) == (1, 1, 1)
