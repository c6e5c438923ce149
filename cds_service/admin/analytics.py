"""Feedback analytics per rule: how often it fired, was accepted or overridden, and why.

Built on the stored cards and feedback alone (rule ids, indicators, outcomes, reason codes, times):
no patient data is read or shown. A card counts in the period it was issued; its feedback counts with
it, whenever it arrived.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from cds_service.storage.database import Database
from cds_service.storage.tables import CardRow, EvaluationRow, FeedbackRow


@dataclass
class RuleStatistics:
    rule: str
    fired: int = 0
    by_indicator: Counter[str] = field(default_factory=Counter)
    cards_with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0
    override_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def acceptance_rate(self) -> float | None:
        decided = self.accepted + self.overridden
        return self.accepted / decided if decided else None

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "fired": self.fired,
            "byIndicator": dict(sorted(self.by_indicator.items())),
            "cardsWithFeedback": self.cards_with_feedback,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "acceptanceRate": self.acceptance_rate,
            "overrideReasons": dict(self.override_reasons.most_common()),
        }


@dataclass(frozen=True)
class Period:
    """Whole days, first to last inclusive, in UTC."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)


def rule_statistics(database: Database, period: Period) -> list[RuleStatistics]:
    """One row per rule that fired in the period, most fired first."""
    stats: dict[str, RuleStatistics] = defaultdict(lambda: RuleStatistics(rule=""))
    in_period = (EvaluationRow.created_at >= period.start) & (EvaluationRow.created_at < period.end)
    with database.session() as session:
        fired = session.execute(
            select(CardRow.rule, CardRow.indicator, func.count())
            .join(EvaluationRow, EvaluationRow.id == CardRow.evaluation_id)
            .where(in_period)
            .group_by(CardRow.rule, CardRow.indicator)
        ).all()
        feedback = session.execute(
            select(CardRow.rule, CardRow.uuid, FeedbackRow.outcome, FeedbackRow.override_reason_code)
            .join(EvaluationRow, EvaluationRow.id == CardRow.evaluation_id)
            .join(FeedbackRow, FeedbackRow.card_uuid == CardRow.uuid)
            .where(in_period)
        ).all()
    for rule, indicator, count in fired:
        row = stats[rule]
        row.rule = rule
        row.fired += count
        row.by_indicator[indicator] += count
    cards_with_feedback: dict[str, set[str]] = defaultdict(set)
    for rule, card_uuid, outcome, reason in feedback:
        row = stats[rule]
        row.rule = rule
        cards_with_feedback[rule].add(card_uuid)
        if outcome == "accepted":
            row.accepted += 1
        else:
            row.overridden += 1
            row.override_reasons[reason or "(no reason given)"] += 1
    for rule, cards in cards_with_feedback.items():
        stats[rule].cards_with_feedback = len(cards)
    return sorted(stats.values(), key=lambda r: (-r.fired, r.rule))


CSV_COLUMNS = (
    "rule",
    "fired",
    "critical",
    "warning",
    "info",
    "cards_with_feedback",
    "accepted",
    "overridden",
    "acceptance_rate",
    "override_reasons",
)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet will not run: one starting like a formula gets a leading `'` (OWASP
    "CSV Injection"); override reason codes in it come from callers. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def as_csv(rows: list[RuleStatistics]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        rate = row.acceptance_rate
        writer.writerow(
            csv_cell(cell)
            for cell in [
                row.rule,
                row.fired,
                row.by_indicator["critical"],
                row.by_indicator["warning"],
                row.by_indicator["info"],
                row.cards_with_feedback,
                row.accepted,
                row.overridden,
                "" if rate is None else f"{rate:.3f}",
                "; ".join(f"{code}={count}" for code, count in row.override_reasons.most_common()),
            ]
        )
    return out.getvalue()
