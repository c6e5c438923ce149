"""What each card says: a short summary (≤139 characters) and the headline of its detail.

A summary puts the advice first ("Hold apixaban 2 days …", "Order INR …") and the facts after it.
When it is too long, the facts are shortened (a long diagnosis display first), never the advice.
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
# Words, not emoji: an EHR without an emoji font shows boxes.
_OUTCOME_MARKS = {
    "met": "met",
    "not-met": "NOT MET",
    "unknown": "unknown (not documented)",
    "not-applicable": "not applicable",
}
DISPLAY_MAX_CHARS = 48
"""A diagnosis or drug display quoted in a summary is cut to this many characters."""


def fit(summary: str) -> str:
    """Keep a summary within the spec's limit, cutting at a word with an ellipsis if it must."""
    if len(summary) <= SUMMARY_MAX_CHARS:
        return summary
    cut = summary[: SUMMARY_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}…"


def advise(advice: str, facts: str = "") -> str:
    """`advice: facts` within the limit; only the facts are ever shortened."""
    if not facts:
        return fit(advice)
    room = SUMMARY_MAX_CHARS - len(advice) - 2
    if room < 12:  # too little room for facts worth reading: the advice alone
        return fit(advice)
    return f"{advice}: {fit_to(facts, room)}"


def fit_to(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:(")
    return f"{cut}…"


def short(display: Scalar, limit: int = DISPLAY_MAX_CHARS) -> str:
    """A long display ("Age-related osteoporosis with current pathological fracture, vertebra(e),
    initial encounter") shortened at a word, so the summary keeps room for what matters."""
    return fit_to(str(display), limit)


def _number(value: Scalar) -> str:
    """A lab value as people write it: 20.4, 45, 1.6 (no float noise)."""
    return f"{round(value, 1):g}" if isinstance(value, int | float) else str(value)


def _v(finding: Finding, key: str) -> Scalar:
    return finding.values.get(key)


def _timing(f: Finding) -> str:
    """The planned date against the hold: passed, or too early and by how much."""
    if _v(f, "planned_passed"):
        return f"the planned date {_v(f, 'planned_date')} has passed"
    if _v(f, "room_for_hold") is False:
        return f"planned {_v(f, 'planned_date')} is {_v(f, 'hold_shortfall')}"
    return ""


def _anticoagulant(f: Finding) -> str:
    timing = _timing(f)
    others = [d for d in str(_v(f, "drugs")).split(", ") if d != _v(f, "drug")]
    also = f"; also on {', '.join(others)}" if others else ""
    if timing:
        return advise(f"Hold {_v(f, 'drug')} {_v(f, 'hold')} and reschedule", f"{timing}{also}")
    return advise(
        f"Hold {_v(f, 'drug')} {_v(f, 'hold')} before vertebral augmentation", f"high bleeding risk{also}"
    )


def _antiplatelet(f: Finding) -> str:
    if _v(f, "aspirin_only"):
        return advise(
            "Continue aspirin unless the prescriber decides otherwise",
            "usually continued for this procedure",
        )
    timing = _timing(f)
    aspirin = "; continue aspirin unless the operator decides otherwise" if _v(f, "with_aspirin") else ""
    facts = f"hold {_v(f, 'hold')} only if they agree"
    if timing:
        facts = f"{timing}; hold {_v(f, 'hold')} only if they agree"
    return advise(f"Review {_v(f, 'drugs')} with cardiology", f"{facts}{aspirin}")


def _multiple(f: Finding) -> str:
    kind = "oral anticoagulant with a P2Y12 inhibitor" if _v(f, "oac_with_p2y12") else f"{_v(f, 'groups')}"
    return advise(
        "Plan the antithrombotic holds with cardiology",
        f"{_v(f, 'therapy')} therapy, {_v(f, 'combination')} ({kind})",
    )


def _coagulation_missing(f: Finding) -> str:
    critical = _v(f, "stale_critical")
    if critical:
        return advise(f"Order {_v(f, 'missing')} now", f"last {critical}")
    why = (
        "none current, on an anticoagulant"
        if _v(f, "on_anticoagulant")
        else "none current before a high bleeding-risk procedure"
    )
    return advise(f"Order {_v(f, 'missing')}", why)


def _eligibility(f: Finding) -> str:
    met, total = _v(f, "met"), _v(f, "total")
    procedure = _procedure(f)
    if met == total:
        return advise(
            "Review the other cards for contraindications",
            f"all {total} criteria for {procedure} documented",
        )
    gaps = [
        f"{names} not met" if key == "not_met_names" else f"{names} not documented"
        for key in ("not_met_names", "unknown_names")
        if (names := _v(f, key))
    ]
    return advise(f"Review eligibility for {procedure}", f"{met}/{total} met; " + "; ".join(gaps))


def _procedure(f: Finding) -> str:
    return str(_v(f, "procedure")).replace("-", " ")


def _follow_up(f: Finding) -> str:
    missing = [
        label
        for key, label in (("missing_dxa", "DXA in 2 years"), ("missing_therapy", "osteoporosis therapy"))
        if _v(f, key)
    ]
    return advise("Plan bone health follow-up", f"osteoporotic fracture without {' or '.join(missing)}")


def _neoplastic(f: Finding) -> str:
    if _v(f, "uncertain"):
        return advise(
            "Consider biopsy and tell oncology",
            f"new vertebral fracture with {short(_v(f, 'condition'))}; spine site not coded",
        )
    return advise("Consider biopsy and coordinate with oncology", short(_v(f, "condition")))


def _levels(f: Finding) -> str:
    names = str(_v(f, "level_names")).split(", ")
    kinds = {"cervical" if name.startswith("C") else "upper thoracic" for name in names}
    kind = " and ".join(sorted(kinds))
    plural = "s" if len(names) > 1 else ""
    return advise(
        "Check payer coverage before scheduling",
        f"{kind} level{plural} {', '.join(names)}; payer policies often exclude these levels",
    )


def _data_unavailable(f: Finding) -> str:
    if _v(f, "categories"):
        return advise(
            "Check the chart directly", f"could not read {_v(f, 'categories')}, so some checks were not made"
        )
    if _v(f, "unreadable_kinds") and not _v(f, "skipped_count"):
        return advise(
            "Check the chart directly",
            f"could not read {_v(f, 'unreadable_kinds')}; checks may be incomplete",
        )
    count = _v(f, "skipped_count")
    plural = count != 1
    return advise(
        "Check the chart directly",
        f"{count} record{'s' if plural else ''} could not be read and {'were' if plural else 'was'} skipped",
    )


SUMMARIES: dict[str, Callable[[Finding], str]] = {
    "anticoagulant-active": _anticoagulant,
    "antiplatelet-active": _antiplatelet,
    "multiple-antithrombotics": _multiple,
    "inr-high": lambda f: advise(
        "Recheck and correct INR before the procedure",
        f"INR {_number(_v(f, 'inr'))} on {_v(f, 'date')} is above "
        f"{f.thresholds_used['inr_critical_max' if f.indicator == 'critical' else 'inr_warning_max']}",
    ),
    "platelets-low": lambda f: advise(
        "Correct platelets before the procedure",
        f"platelets {_number(_v(f, 'platelets'))} ×10⁹/L on {_v(f, 'date')}, below "
        f"{f.thresholds_used['platelets_min_10e9_per_l']}",
    ),
    "coagulation-labs-missing": _coagulation_missing,
    "bleeding-disorder": lambda f: advise(
        "Correct the bleeding disorder before the procedure", f"{short(_v(f, 'condition'))} on record"
    ),
    "spinal-infection": lambda f: advise(
        "Defer the procedure",
        f"spinal infection on record ({short(_v(f, 'condition'))}), an absolute contraindication",
    ),
    "systemic-infection": lambda f: advise(
        "Defer until the infection is treated", f"systemic infection on record ({short(_v(f, 'condition'))})"
    ),
    "pregnancy": lambda f: advise(
        "Do not proceed", f"pregnancy ({short(_v(f, 'basis'))}) is an absolute exclusion (CMS LCD)"
    ),
    "neurologic-compromise": lambda f: advise(
        "Get a spine surgery opinion", f"neurological compromise on record ({short(_v(f, 'condition'))})"
    ),
    "cement-contrast-allergy": lambda f: advise(
        "Plan premedication or an alternative with the operator",
        f"allergy to {_v(f, 'substances')} ({short(_v(f, 'basis'))})",
    ),
    "too-many-levels": lambda f: advise(
        "Consider staging",
        f"{_v(f, 'levels')} levels in one session; more than {f.thresholds_used['max_levels_per_session']} "
        "is a relative contraindication",
    ),
    "copd-multilevel": lambda f: advise(
        f"Limit to {_v(f, 'lung_limit')} per session",
        f"COPD/severe lung disease with {_v(f, 'levels')} levels (embolism and respiratory risk)",
    ),
    "upper-thoracic-level": _levels,
    "level-count-not-stated": lambda f: advise(
        "State the levels",
        f"severe lung disease and no level count: the limit of {_v(f, 'lung_limit')} per session "
        "was not checked"
        if _v(f, "lung_evidence")
        else f"number of levels not stated: the limit of {_v(f, 'session_limit')} per session "
        "was not checked",
    ),
    "eligibility": _eligibility,
    "osteoporosis-follow-up": _follow_up,
    "neoplastic-indication": _neoplastic,
    "data-unavailable": _data_unavailable,
    "other-patient-data": lambda f: advise(
        "Verify the record",
        f"data of another patient was sent with this order ({_v(f, 'kinds')}) and ignored",
    ),
    "patient-deceased": lambda f: advise("Verify the record before ordering", str(_v(f, "basis"))),
}


def summary_for(finding: Finding) -> str:
    return SUMMARIES[finding.rule](finding)


def criterion_line(criterion: str, outcome: str, explanation: str) -> str:
    return f"- **{_CRITERION_NAMES.get(criterion, criterion)}**: {_OUTCOME_MARKS[outcome]} — {explanation}"
