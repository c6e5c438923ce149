"""Say plainly which checks could not be made: a failed fetch is never a silent pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rules.facts import ClinicalFacts, DataCategory, Unreadable
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


_KIND_WORDS = {"medication": "active medication", "lab": "lab result", "condition": "condition entry"}


def _kinds(unread: Sequence[Unreadable]) -> str:
    """ "2 active medications, 1 newest lab result": counts by kind, no ids."""
    counts = Counter(u.kind for u in unread)
    return ", ".join(f"{n} {_KIND_WORDS[kind]}{'s' if n != 1 else ''}" for kind, n in sorted(counts.items()))


def data_unavailable(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Data that could not be fetched, and resources that were skipped as unreadable."""
    if not facts.gaps and not facts.parse_issues and not facts.unreadable:
        return None
    categories = sorted({gap.category for gap in facts.gaps})
    checks: list[str] = []
    for category in categories:
        checks.extend(c for c in CHECKS_NEEDING[category] if c not in checks)
    skipped = [f"{issue.reference} ({issue.problem})" for issue in facts.parse_issues[:10]]
    listed = {issue.reference for issue in facts.parse_issues}
    unread = [u for u in facts.unreadable if u.reference not in listed]
    return Finding(
        rule="data-unavailable",
        indicator="warning",
        values={
            "categories": ", ".join(categories) or None,
            "checks": ", ".join(checks) or None,
            "reasons": "; ".join(f"{gap.category}: {gap.reason}" for gap in facts.gaps) or None,
            "skipped_count": len(facts.parse_issues),
            "skipped": "; ".join(skipped) or None,
            "unreadable_count": len(unread),
            "unreadable_kinds": _kinds(unread) or None,
            "unreadable": "; ".join(f"{u.reference} ({u.what})" for u in unread[:10]) or None,
        },
        sources=("S17",),
    )
