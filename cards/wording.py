"""What each card says: a short summary (≤139 characters) and the headline of its detail.

The wording never claims more than the data: "no INR on record in 7 days", not "INR normal".
"""

from __future__ import annotations

from collections.abc import Callable

from cards.models import SUMMARY_MAX_CHARS
from rules.findings import Finding, Scalar

_CRITERION_NAMES = {
    "indication": "Indication",
    "imaging": "Imaging confirmation",
    "pain": "Pain",
    "conservative-care": "Failed conservative care",
    "fracture-age": "Fracture age",
    "kyphoplasty-timing": "Kyphoplasty timing",
}
_OUTCOME_MARKS = {"met": "✅ met", "not-met": "❌ not met", "unknown": "❔ unknown (no data)"}


def fit(summary: str) -> str:
    """Keep a summary within the spec's limit, cutting at a word with an ellipsis if it must."""
    if len(summary) <= SUMMARY_MAX_CHARS:
        return summary
    cut = summary[: SUMMARY_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}…"


def _number(value: Scalar) -> str:
    """A lab value as people write it: 20.4, 45, 1.6 (no float noise)."""
    return f"{round(value, 1):g}" if isinstance(value, int | float) else str(value)


def _v(finding: Finding, key: str) -> Scalar:
    return finding.values.get(key)


def _anticoagulant(f: Finding) -> str:
    room = _v(f, "room_for_hold")
    timing = ""
    if room is False:
        timing = f"; planned {_v(f, 'planned_date')} leaves too little time"
    return (
        f"On {_v(f, 'drug')}: hold {_v(f, 'hold')} before vertebral augmentation (high bleeding risk){timing}"
    )


def _antiplatelet(f: Finding) -> str:
    if _v(f, "aspirin_only"):
        return "On aspirin: usually continued for vertebral augmentation; decide with the operator"
    aspirin = "; continue aspirin unless the operator decides otherwise" if _v(f, "with_aspirin") else ""
    return f"On {_v(f, 'drugs')}: consider holding {_v(f, 'hold')} if cardiology agrees{aspirin}"


def _coagulation_missing(f: Finding) -> str:
    if _v(f, "on_anticoagulant"):
        return (
            f"No current {_v(f, 'missing')} on record while on an anticoagulant: check before the procedure"
        )
    return f"No current {_v(f, 'missing')} on record before a high bleeding-risk procedure"


def _eligibility(f: Finding) -> str:
    met, total = _v(f, "met"), _v(f, "total")
    if met == total:
        return f"Eligibility: all {total} criteria for {_procedure(f)} documented"
    parts = [f"{met}/{total} criteria met"]
    if _v(f, "not_met"):
        parts.append(f"{_v(f, 'not_met')} not met")
    if _v(f, "unknown"):
        parts.append(f"{_v(f, 'unknown')} unknown")
    return f"Eligibility for {_procedure(f)}: " + ", ".join(parts)


def _procedure(f: Finding) -> str:
    return str(_v(f, "procedure")).replace("-", " ")


def _follow_up(f: Finding) -> str:
    missing = [
        label
        for key, label in (("missing_dxa", "DXA in 2 years"), ("missing_therapy", "osteoporosis therapy"))
        if _v(f, key)
    ]
    return f"Osteoporotic fracture without {' or '.join(missing)}: plan bone health follow-up"


def _data_unavailable(f: Finding) -> str:
    if _v(f, "categories"):
        return f"Could not read {_v(f, 'categories')}: some checks were not made"
    if _v(f, "unreadable_kinds") and not _v(f, "skipped_count"):
        return f"Could not read {_v(f, 'unreadable_kinds')}: checks may be incomplete"
    count = _v(f, "skipped_count")
    plural = count != 1
    return (
        f"{count} record{'s' if plural else ''} could not be read and {'were' if plural else 'was'} skipped: "
        "checks may be incomplete"
    )


SUMMARIES: dict[str, Callable[[Finding], str]] = {
    "anticoagulant-active": _anticoagulant,
    "antiplatelet-active": _antiplatelet,
    "inr-high": lambda f: (
        f"INR {_number(_v(f, 'inr'))} ({_v(f, 'date')}) is above "
        f"{f.thresholds_used['inr_critical_max' if f.indicator == 'critical' else 'inr_warning_max']} "
        "for a high bleeding-risk procedure"
    ),
    "platelets-low": lambda f: (
        f"Platelets {_number(_v(f, 'platelets'))} ×10⁹/L ({_v(f, 'date')}) below "
        f"{f.thresholds_used['platelets_min_10e9_per_l']}: correct before the procedure"
    ),
    "coagulation-labs-missing": _coagulation_missing,
    "bleeding-disorder": lambda f: (
        f"Bleeding disorder on record ({_v(f, 'condition')}): correct before the procedure"
    ),
    "spinal-infection": lambda f: f"Spinal infection on record ({_v(f, 'condition')}): contraindication",
    "systemic-infection": lambda f: (
        f"Systemic infection on record ({_v(f, 'condition')}): defer until treated"
    ),
    "pregnancy": lambda f: f"Pregnancy ({_v(f, 'basis')}): vertebral augmentation is contraindicated",
    "neurologic-compromise": lambda f: (
        f"Neurological compromise on record ({_v(f, 'condition')}): get a spine surgery opinion"
    ),
    "cement-contrast-allergy": lambda f: f"Allergy to {_v(f, 'substances')} on record ({_v(f, 'basis')})",
    "too-many-levels": lambda f: (
        f"{_v(f, 'levels')} levels in one session: more than {f.thresholds_used['max_levels_per_session']} "
        "is a relative contraindication; consider staging"
    ),
    "copd-multilevel": lambda f: (
        f"COPD/severe lung disease with {_v(f, 'levels')} levels: limit to {_v(f, 'lung_limit')} per session "
        "(embolism and respiratory risk)"
    ),
    "upper-thoracic-level": lambda f: (
        f"Upper thoracic level ({_v(f, 'level_names')}): payer policies often exclude T1–T4"
    ),
    "eligibility": _eligibility,
    "osteoporosis-follow-up": _follow_up,
    "neoplastic-indication": lambda f: (
        f"Neoplastic indication ({_v(f, 'condition')}): consider biopsy and coordinate with oncology"
    ),
    "data-unavailable": _data_unavailable,
    "other-patient-data": lambda f: (
        f"Data of another patient was sent with this order ({_v(f, 'kinds')}): ignored; verify the record"
    ),
    "patient-deceased": lambda f: f"{_v(f, 'basis')}: verify the record before ordering",
}


def summary_for(finding: Finding) -> str:
    return fit(SUMMARIES[finding.rule](finding))


def criterion_line(criterion: str, outcome: str, explanation: str) -> str:
    return f"- **{_CRITERION_NAMES.get(criterion, criterion)}**: {_OUTCOME_MARKS[outcome]} — {explanation}"
