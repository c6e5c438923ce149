"""Writing evaluations and feedback: what was decided and what clinicians did, without PHI."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, delete, insert, select, update

from cds_service.storage.database import Database
from cds_service.storage.tables import CardRow, EvaluationRow, FeedbackRow
from cds_service.web import metrics


def patient_hash(key: bytes, patient_id: str) -> str:
    """Keyed hash so stored rows can be grouped by patient without revealing who."""
    return hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def load_or_create_hash_key(configured: str | None, key_file: Path) -> bytes:
    if configured:
        return configured.encode("utf-8")
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    try:
        with key_file.open("xb") as handle:  # another worker may have written it first
            handle.write(key)
    except FileExistsError:
        return key_file.read_bytes().strip()
    key_file.chmod(0o600)
    return key


@dataclass(frozen=True)
class IssuedCard:
    uuid: str
    rule: str
    indicator: str
    suggestion_uuids: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationRecord:
    service_id: str
    hook: str
    hook_instance: str
    patient_hash: str
    thresholds_version: int
    procedure: str | None
    level_count: int | None
    rules_run: tuple[str, ...]
    outcomes: list[dict[str, Any]]
    cards: tuple[IssuedCard, ...]
    data: dict[str, Any]
    timings_ms: dict[str, float]


_SQLITE_WRITER = threading.Lock()
"""One evaluation write at a time per process on SQLite. The file has a single writer, and a writer that
finds it taken sleeps in SQLite's busy handler (1, 2, 5, 10 ms and more) instead of queueing."""


def store_batch(db: Database, records: list[EvaluationRecord]) -> list[str]:
    """Evaluation rows and their card rows, all in one transaction; returns the new evaluation ids.

    Core INSERTs, an executemany per table (no ORM unit of work): this runs for every hook call, and the
    ORM's bookkeeping cost more than the rest of the decision for a typical record (`python -m bench`).
    Feedback that arrived before its card's row (through another worker) is linked once the cards are
    committed (`link_early_feedback`).
    """
    if not records:
        return []
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in records]
    evaluations = [
        {
            "id": evaluation_id,
            "created_at": now,
            "service_id": record.service_id,
            "hook": record.hook,
            "hook_instance": record.hook_instance,
            "patient_hash": record.patient_hash,
            "thresholds_version": record.thresholds_version,
            "procedure": record.procedure,
            "level_count": record.level_count,
            "rules_run": list(record.rules_run),
            "outcomes": record.outcomes,
            "data": record.data,
            "timings_ms": record.timings_ms,
        }
        for evaluation_id, record in zip(ids, records, strict=True)
    ]
    cards = [
        {
            "uuid": card.uuid,
            "evaluation_id": evaluation_id,
            "rule": card.rule,
            "indicator": card.indicator,
            "suggestion_uuids": list(card.suggestion_uuids),
        }
        for evaluation_id, record in zip(ids, records, strict=True)
        for card in record.cards
    ]
    writer = _SQLITE_WRITER if db.engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with writer:
        with db.engine.begin() as connection:
            connection.execute(insert(EvaluationRow), evaluations)  # one executemany per table
            if cards:
                connection.execute(insert(CardRow), cards)
        if cards:
            link_early_feedback(db)
    metrics.EVALUATION_BATCH_ROWS.observe(len(records))
    return ids


_LATE_LINK_WINDOW = timedelta(minutes=5)
"""How far back unlinked feedback is looked at: older unlinked feedback names a card never issued here."""


def link_early_feedback(db: Database) -> None:
    """Give recent feedback stored without its card (it reached another worker before the card's row
    was committed) the card's evaluation and rule, where the card is there now.

    Both sides call this after their own commit: the writer after committing cards, the feedback route
    after committing feedback it could not link. Whichever commits second sees the other's rows, so no
    feedback stays unlinked, whatever the order (each statement sees every commit made before it)."""
    its_card = CardRow.uuid == FeedbackRow.card_uuid
    with db.engine.begin() as connection:
        connection.execute(
            update(FeedbackRow)
            .where(
                FeedbackRow.evaluation_id.is_(None),
                FeedbackRow.received_at >= datetime.now(UTC) - _LATE_LINK_WINDOW,
                select(CardRow.uuid).where(its_card).exists(),
            )
            .values(
                evaluation_id=select(CardRow.evaluation_id).where(its_card).scalar_subquery(),
                rule=select(CardRow.rule).where(its_card).scalar_subquery(),
            )
        )


def store_evaluation(db: Database, record: EvaluationRecord) -> str:
    """One evaluation, written at once (the writer thread batches them instead: `EvaluationWriter`)."""
    return store_batch(db, [record])[0]


@dataclass(frozen=True)
class Purged:
    evaluations: int
    feedback: int


def purge_older_than(db: Database, cutoff: datetime) -> Purged:
    """Delete evaluations (with their cards) and feedback recorded before `cutoff` (retention)."""
    with db.session() as session:
        old = select(EvaluationRow.id).where(EvaluationRow.created_at < cutoff)
        session.execute(delete(CardRow).where(CardRow.evaluation_id.in_(old)))
        evaluations = session.execute(delete(EvaluationRow).where(EvaluationRow.created_at < cutoff))
        feedback = session.execute(delete(FeedbackRow).where(FeedbackRow.received_at < cutoff))
        assert isinstance(evaluations, CursorResult)
        assert isinstance(feedback, CursorResult)
        return Purged(evaluations=evaluations.rowcount, feedback=feedback.rowcount)
