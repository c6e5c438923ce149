"""Writing evaluations and feedback: what was decided and what clinicians did, without PHI."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Dialect, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from cds_service import metrics
from cds_service.database import Database
from cds_service.hook_models import FeedbackItem
from cds_service.tables import CardRow, EvaluationRow, FeedbackRow


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

    Plain multi-row INSERTs (no ORM unit of work): this runs for every hook call, and the ORM's
    bookkeeping cost more than the rest of the decision for a typical record (`python -m bench`).
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
            _insert_rows(connection, _table(EvaluationRow), evaluations)
            if cards:
                _insert_rows(connection, _table(CardRow), cards)
        if cards:
            link_early_feedback(db)
    metrics.EVALUATION_BATCH_ROWS.observe(len(records))
    return ids


_SQLITE_MAX_PARAMETERS = 999
"""The fewest parameters one SQLite statement may take (SQLITE_MAX_VARIABLE_NUMBER before 3.32)."""

BindProcessor = Callable[[Any], Any] | None


def _table(row_class: type[EvaluationRow] | type[CardRow]) -> Table:
    return cast(Table, row_class.__table__)


def _insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (each with a value for every column of `table`).

    On SQLite: as few multi-row INSERT statements as its parameter limit allows, the values converted
    by SQLAlchemy's own bind processors (stored exactly as `insert(table)` would store them). An
    executemany runs one statement per row, and the sqlite3 module hands the GIL back and forth around
    each: from the writer thread, that took the GIL from the calls on the event loop about ten times a
    call and cost them about 0.7 ms of CPU per call, a fifth of a typical one (`python -m bench`).
    Other databases: executemany, as before.
    """
    if connection.dialect.name != "sqlite":
        connection.execute(insert(table), rows)
        return
    names, processors = _sqlite_binds(table, connection.dialect)
    per_statement = max(1, _SQLITE_MAX_PARAMETERS // len(names))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = [
            value if process is None else process(value)
            for row in chunk
            for value, process in zip([row[name] for name in names], processors, strict=True)
        ]
        statement = _multi_row_insert(table, connection.dialect, len(chunk))
        connection.exec_driver_sql(statement, tuple(values))


@functools.lru_cache(maxsize=32)  # a few engines per process (tests make many)
def _sqlite_binds(table: Table, dialect: Dialect) -> tuple[tuple[str, ...], tuple[BindProcessor, ...]]:
    columns = list(table.columns)
    # dialect_impl: the dialect's own type (SQLite's DateTime writes its own text form, for one)
    processors = tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns)
    return tuple(c.name for c in columns), processors


@functools.lru_cache(maxsize=512)
def _multi_row_insert(table: Table, dialect: Dialect, rows: int) -> str:
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.format_column(c) for c in table.columns)
    one_row = "(" + ", ".join("?" * len(table.columns)) + ")"
    # Identifiers come from the table definitions, quoted by the dialect; every value is a parameter.
    head = f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES "  # noqa: S608
    return head + ", ".join([one_row] * rows)


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


def _dedupe_key(service_id: str, item: FeedbackItem) -> str:
    accepted = ",".join(sorted(s.id for s in item.accepted_suggestions or []))
    given = item.reason
    reason = given.reason.code if given and given.reason else ""
    raw = "|".join((service_id, item.card, item.outcome, item.outcome_timestamp, accepted, reason))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def store_feedback(db: Database, service_id: str, items: list[FeedbackItem]) -> tuple[int, int]:
    """Store each item once; a repeat of the same item is accepted and ignored. Returns (new, duplicate)."""
    new = duplicate = 0
    unlinked = False
    for item in items:
        key = _dedupe_key(service_id, item)
        try:
            with db.session() as session:
                if session.scalar(select(FeedbackRow.id).where(FeedbackRow.dedupe_key == key)) is not None:
                    duplicate += 1
                    continue
                card = session.get(CardRow, item.card)
                given = item.reason  # overrideReason, Epic's overrideReasons or its reason extension
                reason = given.reason if given else None
                session.add(
                    FeedbackRow(
                        dedupe_key=key,
                        received_at=datetime.now(UTC),
                        service_id=service_id,
                        card_uuid=item.card,
                        evaluation_id=card.evaluation_id if card else None,
                        rule=card.rule if card else None,
                        outcome=item.outcome,
                        accepted_suggestions=[s.id for s in item.accepted_suggestions or []],
                        override_reason_system=reason.system if reason else None,
                        override_reason_code=reason.code if reason else None,
                        override_reason_display=reason.display[:256] if reason and reason.display else None,
                        has_user_comment=bool(given and given.user_comment),
                        outcome_timestamp=datetime.fromisoformat(
                            item.outcome_timestamp.replace("Z", "+00:00")
                        ),
                    )
                )
            new += 1
            unlinked = unlinked or card is None
            metrics.FEEDBACK.labels(rule=card.rule if card else "unknown", outcome=item.outcome).inc()
        except IntegrityError:
            duplicate += 1  # the same item raced in through another worker
    if unlinked:
        link_early_feedback(db)  # its card may have been committed meanwhile, by another worker
    return new, duplicate


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
