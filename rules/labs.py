"""Picking the result a rule may use: the latest one inside its look-back window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from rules.facts import ClinicalFacts, LabKind, LabResult

NEWEST_ONLY_KINDS: frozenset[LabKind] = frozenset(
    {"inr", "platelets", "pain-nrs", "fev1-percent-predicted", "spo2", "egfr", "creatinine-clearance"}
)
"""Kinds the rules read only through `latest_result`: the newest result, nothing older.

`fhir_mappings` keeps (and validates) just the newest usable result of these kinds, which keeps a
record of hundreds of pain scores and eGFRs cheap. A rule that needs the history of one of them must
take it out of this set; hCG and T-scores stay out because rules look at every result in a window.
"""


@dataclass(frozen=True)
class LatestResult:
    """The newest result within the window (`current`), or the newest one outside it (`stale`)."""

    current: LabResult | None
    stale: LabResult | None

    @property
    def missing(self) -> bool:
        return self.current is None


def latest_result(facts: ClinicalFacts, kind: LabKind, lookback_days: int) -> LatestResult:
    results = facts.labs_of(kind)
    if not results:
        return LatestResult(current=None, stale=None)
    newest = results[0]
    if newest.effective >= facts.today - timedelta(days=lookback_days):
        return LatestResult(current=newest, stale=None)
    return LatestResult(current=None, stale=newest)


def renal_clearance_ml_per_min(facts: ClinicalFacts, lookback_days: int) -> LabResult | None:
    """CrCl (Cockcroft-Gault) if recent, else eGFR as the stand-in most EHRs report."""
    for kind in ("creatinine-clearance", "egfr"):
        result = latest_result(facts, kind, lookback_days).current
        if result is not None:
            return result
    return None
