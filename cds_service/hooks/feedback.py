"""Storing CDS Hooks feedback: each item once, linked to the card it is about when that card's row exists.

The hook side of the feedback endpoint: it reads the wire model (`hook_models.FeedbackItem`); the rows and
the late linking are storage's (`records.link_early_feedback`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cds_service.hooks.models import FeedbackItem
from cds_service.storage.database import Database
from cds_service.storage.records import link_early_feedback
from cds_service.storage.tables import CardRow, FeedbackRow
from cds_service.web import metrics


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
