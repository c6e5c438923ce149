"""Eligibility: is this an indicated, imaging-confirmed, painful, recent fracture that failed
conservative care? Each criterion is met, not met, or unknown — unknown is never folded into either.
"""

from __future__ import annotations

from datetime import date, timedelta

from rules.facts import ClinicalFacts, ConditionFact, DataCategory
from rules.findings import Criterion, Finding
from rules.labs import latest_result
from rules.thresholds import Thresholds

INDICATION_GROUPS = (
    "osteoporotic-vcf",
    "collapsed-vertebra",
    "neoplastic-fracture",
    "myeloma",
    "bone-metastasis",
    "primary-spine-tumor",
    "vertebral-hemangioma",
)
FRACTURE_GROUPS = (
    "osteoporotic-vcf",
    "collapsed-vertebra",
    "neoplastic-fracture",
    "traumatic-vertebral-fracture",
)
NEOPLASTIC_GROUPS = ("myeloma", "bone-metastasis", "primary-spine-tumor", "neoplastic-fracture")


def _unknown(criterion: str, category: DataCategory) -> Criterion:
    return Criterion(
        criterion=criterion, outcome="unknown", explanation=f"{category.value} could not be read"
    )


def indication(facts: ClinicalFacts) -> Criterion:
    if facts.is_missing(DataCategory.CONDITIONS):
        return _unknown("indication", DataCategory.CONDITIONS)
    found = facts.conditions_in(*INDICATION_GROUPS)
    if found:
        return Criterion(
            criterion="indication",
            outcome="met",
            explanation=f"documented: {found[0].display}",
            evidence=tuple(c.evidence for c in found),
        )
    trauma = facts.conditions_in("traumatic-vertebral-fracture")
    if trauma:
        return Criterion(
            criterion="indication",
            outcome="not-met",
            explanation=f"traumatic fracture ({trauma[0].display}) is not a standard indication; review",
            evidence=tuple(c.evidence for c in trauma),
        )
    return Criterion(
        criterion="indication",
        outcome="not-met",
        explanation="no osteoporotic, neoplastic or hemangioma vertebral fracture diagnosis on record",
    )


def imaging(facts: ClinicalFacts, t: Thresholds) -> Criterion:
    if facts.is_missing(DataCategory.IMAGING):
        return _unknown("imaging", DataCategory.IMAGING)
    spine = sorted(
        (i for i in facts.imaging if i.kind in ("mri-spine", "ct-spine")),
        key=lambda i: i.performed,
        reverse=True,
    )
    if not spine:
        return Criterion(
            criterion="imaging",
            outcome="not-met",
            explanation="no MRI or CT of the spine on record; confirm the acute fracture (MRI STIR/T2 edema)",
        )
    newest = spine[0]
    age_days = (facts.today - newest.performed).days
    if age_days > t.imaging_lookback_days:
        return Criterion(
            criterion="imaging",
            outcome="not-met",
            explanation=f"latest spine imaging is {age_days} days old (limit {t.imaging_lookback_days})",
            evidence=(newest.evidence,),
        )
    return Criterion(
        criterion="imaging",
        outcome="met",
        explanation=f"{newest.display} on {newest.performed.isoformat()}",
        evidence=(newest.evidence,),
    )


def _nrs(score: float) -> str:
    """A pain score as a clinician writes it: whole numbers on the 0-10 scale ("2/10", not
    "1.82888/10"), halves rounded up. The comparison with the threshold uses the value as recorded."""
    return str(int(score + 0.5))


def pain(facts: ClinicalFacts, t: Thresholds) -> Criterion:
    if facts.is_missing(DataCategory.OBSERVATIONS):
        return _unknown("pain", DataCategory.OBSERVATIONS)
    if facts.inpatient:
        limit, setting = t.pain_nrs_min_inpatient, "inpatient"
    else:
        limit = t.pain_nrs_min_outpatient
        setting = "outpatient" if facts.inpatient is False else "setting unknown, outpatient limit used"
    result = latest_result(facts, "pain-nrs", t.pain_lookback_days)
    if result.current is None:
        stale = f" (last {_nrs(result.stale.value)}/10 on {result.stale.effective})" if result.stale else ""
        return Criterion(
            criterion="pain",
            outcome="unknown",
            explanation=f"no pain score in the last {t.pain_lookback_days} days{stale}",
            evidence=(result.stale.evidence,) if result.stale else (),
        )
    score = result.current.value
    return Criterion(
        criterion="pain",
        outcome="met" if score >= limit else "not-met",
        explanation=f"NRS {_nrs(score)}/10 on {result.current.effective} (minimum {limit:g}, {setting})",
        evidence=(result.current.evidence,),
    )


def conservative_care(facts: ClinicalFacts, t: Thresholds) -> Criterion:
    """Documented non-surgical management of *this* fracture for long enough.

    Therapy counts from the fracture's onset (or its first record, the mapping's fallback): an
    analgesic started years earlier and still active has treated this fracture only since it
    happened. Without a fracture onset the time on therapy cannot be measured, and the criterion is
    unknown with that reason. Not applicable to a neoplastic fracture (IMWG, NASS: no trial of
    conservative care is required before augmentation).
    """
    if facts.conditions_in(*NEOPLASTIC_GROUPS):
        return Criterion(
            criterion="conservative-care",
            outcome="not-applicable",
            explanation="not required before augmentation for a neoplastic fracture (IMWG, NASS)",
        )
    if facts.is_missing(DataCategory.MEDICATIONS):
        return _unknown("conservative-care", DataCategory.MEDICATIONS)
    analgesics = [m for m in facts.medications if m.drug_class == "analgesic"]
    if not analgesics:
        return Criterion(
            criterion="conservative-care",
            outcome="unknown",
            explanation=f"no analgesic therapy on record; document {t.conservative_care_min_weeks} weeks "
            "of non-surgical management",
        )
    evidence = tuple(m.evidence for m in analgesics)
    onset = fracture_onset(facts) or _dated(facts.conditions_in("vertebral-hemangioma"))
    if onset is None:
        return Criterion(
            criterion="conservative-care",
            outcome="unknown",
            explanation="analgesic therapy on record, but no fracture onset date to measure it from "
            "(therapy counts for this fracture only)",
            evidence=evidence,
        )
    _, onset_date = onset
    starts = [max(m.started, onset_date) for m in analgesics if m.started is not None]
    if not starts:
        return Criterion(
            criterion="conservative-care",
            outcome="unknown",
            explanation="analgesic therapy on record without a start date",
            evidence=evidence,
        )
    since = min(starts)
    weeks = (facts.today - since).days // 7
    counted = " (the fracture's onset)" if since == onset_date else ""
    return Criterion(
        criterion="conservative-care",
        outcome="met" if weeks >= t.conservative_care_min_weeks else "not-met",
        explanation=f"analgesic therapy since {since}{counted}: {weeks} weeks (minimum "
        f"{t.conservative_care_min_weeks})",
        evidence=evidence,
    )


def fracture_onset(facts: ClinicalFacts) -> tuple[ConditionFact, date] | None:
    return _dated(facts.conditions_in(*FRACTURE_GROUPS))


def _dated(conditions: tuple[ConditionFact, ...]) -> tuple[ConditionFact, date] | None:
    """The most recent of the conditions with an onset (or first-recorded) date."""
    dated = [(c, c.onset) for c in conditions if c.onset is not None]
    if not dated:
        return None
    condition, onset = max(dated, key=lambda pair: pair[1])
    return condition, onset


def _hemangioma_without_fracture(facts: ClinicalFacts) -> ConditionFact | None:
    """A vertebral hemangioma treated without any fracture coded: fracture timing does not apply."""
    hemangioma = facts.conditions_in("vertebral-hemangioma")
    if not hemangioma or facts.conditions_in(*FRACTURE_GROUPS, "healed-fracture"):
        return None
    return hemangioma[0]


def fracture_age(facts: ClinicalFacts, t: Thresholds) -> Criterion:
    if facts.is_missing(DataCategory.CONDITIONS):
        return _unknown("fracture-age", DataCategory.CONDITIONS)
    hemangioma = _hemangioma_without_fracture(facts)
    if hemangioma is not None:
        return Criterion(
            criterion="fracture-age",
            outcome="not-applicable",
            explanation=f"no fracture is coded: the indication is {hemangioma.display}",
            evidence=(hemangioma.evidence,),
        )
    healed = facts.conditions_in("healed-fracture")
    onset = fracture_onset(facts)
    if onset is None:
        if healed:
            return Criterion(
                criterion="fracture-age",
                outcome="not-met",
                explanation=f"only a healed or old fracture is coded ({healed[0].display})",
                evidence=tuple(c.evidence for c in healed),
            )
        return Criterion(
            criterion="fracture-age", outcome="unknown", explanation="fracture onset date not recorded"
        )
    condition, onset_date = onset
    age_days = (facts.today - onset_date).days
    met = age_days <= t.fracture_age_warning_days
    return Criterion(
        criterion="fracture-age",
        outcome="met" if met else "not-met",
        explanation=f"fracture {age_days} days old (onset {onset_date})"
        + (
            "" if met else f"; over {t.fracture_age_warning_days} days it may be healed: confirm edema on MRI"
        ),
        evidence=(condition.evidence,),
    )


def kyphoplasty_timing(facts: ClinicalFacts, t: Thresholds) -> Criterion:
    hemangioma = _hemangioma_without_fracture(facts)
    if hemangioma is not None:
        return Criterion(
            criterion="kyphoplasty-timing",
            outcome="not-applicable",
            explanation="no fracture is coded, so there is no height to restore",
            evidence=(hemangioma.evidence,),
        )
    onset = fracture_onset(facts)
    if onset is None:
        return Criterion(
            criterion="kyphoplasty-timing", outcome="unknown", explanation="fracture onset date not recorded"
        )
    condition, onset_date = onset
    age_days = (facts.today - onset_date).days
    within = age_days <= t.kyphoplasty_height_restoration_days
    return Criterion(
        criterion="kyphoplasty-timing",
        outcome="met" if within else "not-met",
        explanation=f"{age_days} days since fracture; height restoration is "
        + ("still likely" if within else f"less likely after {t.kyphoplasty_height_restoration_days} days"),
        evidence=(condition.evidence,),
    )


_SHORT_NAMES = {
    "indication": "indication",
    "imaging": "imaging",
    "pain": "pain",
    "conservative-care": "conservative care",
    "fracture-age": "fracture age",
    "kyphoplasty-timing": "kyphoplasty timing",
}


def eligibility(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    if facts.order is None:
        return None
    criteria = [
        indication(facts),
        imaging(facts, t),
        pain(facts, t),
        conservative_care(facts, t),
        fracture_age(facts, t),
    ]
    if facts.order.procedure == "kyphoplasty":
        criteria.append(kyphoplasty_timing(facts, t))
    applicable = [c for c in criteria if c.outcome != "not-applicable"]
    counts = {
        outcome: sum(c.outcome == outcome for c in criteria)
        for outcome in ("met", "not-met", "unknown", "not-applicable")
    }
    # Kyphoplasty timing is information only (clinical-rules.md §5): it never makes the card a warning.
    # A criterion that does not apply to this indication counts neither for nor against it.
    core_met = all(c.outcome == "met" for c in applicable if c.criterion != "kyphoplasty-timing")
    cutoff = facts.today - timedelta(days=t.imaging_lookback_days)
    return Finding(
        rule="eligibility",
        indicator="info" if core_met else "warning",
        criteria=tuple(criteria),
        values={
            "met": counts["met"],
            "not_met": counts["not-met"],
            "unknown": counts["unknown"],
            "not_applicable": counts["not-applicable"],
            "total": len(applicable),
            "not_met_names": ", ".join(_SHORT_NAMES[c.criterion] for c in criteria if c.outcome == "not-met")
            or None,
            "unknown_names": ", ".join(_SHORT_NAMES[c.criterion] for c in criteria if c.outcome == "unknown")
            or None,
            "procedure": facts.order.procedure,
            "imaging_cutoff": cutoff.isoformat(),
        },
        thresholds_used={
            "pain_nrs_min_outpatient": t.pain_nrs_min_outpatient,
            "pain_nrs_min_inpatient": t.pain_nrs_min_inpatient,
            "imaging_lookback_days": t.imaging_lookback_days,
            "conservative_care_min_weeks": t.conservative_care_min_weeks,
            "fracture_age_warning_days": t.fracture_age_warning_days,
            "kyphoplasty_height_restoration_days": t.kyphoplasty_height_restoration_days,
        },
        sources=("S1", "S5", "S6", "S10", "S11"),
    )
