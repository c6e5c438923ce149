"""What a rule concludes: a finding with its evidence, values and the thresholds it compared with."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rules.facts import Evidence, ParseIssue
from rules.thresholds import Indicator

Outcome = Literal["met", "not-met", "unknown", "not-applicable"]
Scalar = str | int | float | bool | None


class Criterion(BaseModel):
    """One eligibility criterion: met, not met, unknown (no data) — never silently folded — or not
    applicable to this indication (with the reason), which does not count against eligibility."""

    model_config = ConfigDict(frozen=True)

    criterion: str
    outcome: Outcome
    explanation: str
    evidence: tuple[Evidence, ...] = ()


class Finding(BaseModel):
    """A rule that fired, with everything a card needs to explain it."""

    model_config = ConfigDict(frozen=True)

    rule: str
    indicator: Indicator
    evidence: tuple[Evidence, ...] = ()
    values: dict[str, Scalar] = {}
    """Named facts the summary and detail quote (drug, levels, INR value, hold days…)."""
    thresholds_used: dict[str, Scalar] = {}
    """Threshold field name → the value compared with."""
    criteria: tuple[Criterion, ...] = ()
    sources: tuple[str, ...] = ()
    """Source ids (rules.sources) the finding rests on; the first is the card's source."""


class Evaluation(BaseModel):
    """The result of one evaluation: findings, most severe first, and what could not be read."""

    model_config = ConfigDict(frozen=True)

    as_of: datetime
    thresholds_version: int
    findings: tuple[Finding, ...]
    rules_run: tuple[str, ...]
    parse_issues: tuple[ParseIssue, ...] = ()

    def finding(self, rule_id: str) -> Finding | None:
        return next((f for f in self.findings if f.rule == rule_id), None)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(f.rule for f in self.findings)
