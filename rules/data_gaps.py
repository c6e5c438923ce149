"""Say plainly which checks could not be made: a failed fetch is never a silent pass."""

from __future__ import annotations

from rules.facts import ClinicalFacts, DataCategory
from rules.findings import Finding
from rules.thresholds import Thresholds

# Which checks each kind of data feeds, so the card can name what was not checked.
CHECKS_NEEDING: dict[DataCategory, tuple[str, ...]] = {
    DataCategory.PATIENT: ("pregnancy",),
    DataCategory.CONDITIONS: (
        "indication",
        "fracture age",
        "infection",
        "bleeding disorder",
        "COPD / lung disease",
        "pregnancy",
        "neurological compromise",
    ),
    DataCategory.OBSERVATIONS: (
        "INR",
        "platelets",
        "pain score",
        "lung function",
        "renal function for DOAC holds",
    ),
    DataCategory.MEDICATIONS: (
        "anticoagulants",
        "antiplatelets",
        "osteoporosis therapy",
        "conservative care",
    ),
    DataCategory.ALLERGIES: ("cement / contrast allergy",),
    DataCategory.IMAGING: ("imaging confirmation", "DXA follow-up"),
    DataCategory.ENCOUNTER: ("inpatient pain threshold",),
}


def data_unavailable(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Data that could not be fetched, and resources that were skipped as unreadable."""
    if not facts.gaps and not facts.parse_issues:
        return None
    categories = sorted({gap.category for gap in facts.gaps})
    checks: list[str] = []
    for category in categories:
        checks.extend(c for c in CHECKS_NEEDING[category] if c not in checks)
    skipped = [f"{issue.reference} ({issue.problem})" for issue in facts.parse_issues[:10]]
    return Finding(
        rule="data-unavailable",
        indicator="warning",
        values={
            "categories": ", ".join(categories) or None,
            "checks": ", ".join(checks) or None,
            "reasons": "; ".join(f"{gap.category}: {gap.reason}" for gap in facts.gaps) or None,
            "skipped_count": len(facts.parse_issues),
            "skipped": "; ".join(skipped) or None,
        },
        sources=("S17",),
    )
