"""Bleeding risk: antithrombotic drugs, coagulation labs and bleeding disorders.

Vertebral augmentation is a high bleeding-risk procedure (ASRA 2018, S3; SIR 2019, S2).
"""

from __future__ import annotations

from rules.facts import (
    ANTICOAGULANT_CLASSES,
    ANTIPLATELET_CLASSES,
    ClinicalFacts,
    DataCategory,
    MedicationFact,
)
from rules.findings import Finding, Scalar
from rules.holds import HoldAdvice, HoldTiming, hold_advice, hold_timing
from rules.labs import latest_result, renal_clearance_ml_per_min
from rules.thresholds import Thresholds


def _timing_values(timing: HoldTiming | None) -> dict[str, Scalar]:
    """What the card says about the planned date: room for the hold, by how much it falls short, or passed."""
    if timing is None:
        return {"room_for_hold": None, "hold_shortfall": None, "planned_passed": False}
    return {
        "room_for_hold": timing.room,
        "hold_shortfall": None if timing.room else timing.shortfall_text,
        "planned_passed": timing.passed,
    }


def _hold_sources(advice: list[HoldAdvice], longest: HoldAdvice) -> tuple[str, ...]:
    """Each interval's own source, the deciding one first, then SIR 2019 and ASRA 2018, which class
    vertebral augmentation as high bleeding risk (the card's advice cites both)."""
    ordered = [longest.source_id, *(a.source_id for a in advice), "S2", "S3"]
    return tuple(dict.fromkeys(ordered))


def anticoagulant_active(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """An active anticoagulant: how long to hold it, and whether the planned date leaves room.

    Critical when the planned date leaves less than the hold interval or has passed (clinical-rules.md
    §7, VA-ANTICOAG: "critical if no hold possible before the planned date").
    """
    drugs = facts.medications_in(ANTICOAGULANT_CLASSES)
    if not drugs or facts.order is None:
        return None
    renal = renal_clearance_ml_per_min(facts, t.renal_lookback_days)
    advice = [(drug, hold_advice(drug, t.hold_intervals, renal)) for drug in drugs]
    longest_drug, longest = max(advice, key=lambda pair: pair[1].hours or 0)
    timing = hold_timing(facts.order.planned_date, facts.today, longest)
    values: dict[str, Scalar] = {
        "drug": longest_drug.ingredient,
        "drugs": ", ".join(sorted({d.ingredient for d in drugs})),
        "hold": longest.text,
        "hold_hours": longest.hours,
        "hold_basis": longest.basis,
        "planned_date": facts.order.planned_date.isoformat() if facts.order.planned_date else None,
        **_timing_values(timing),
        "renal_value": renal.value if renal else None,
        "renal_kind": renal.kind if renal else None,
        "on_vka": any(d.drug_class == "vka" for d in drugs),
        "combined": _combined_card_shown(facts, t),
    }
    thresholds_used: dict[str, Scalar] = {
        field: getattr(t.hold_intervals, field)
        for _, a in advice
        for field in (a.threshold_field, a.also_field)
        if field is not None
    }
    evidence = tuple(d.evidence for d in drugs) + ((renal.evidence,) if renal else ())
    return Finding(
        rule="anticoagulant-active",
        indicator="critical" if timing is not None and not timing.room else "warning",
        evidence=evidence,
        values=values,
        thresholds_used=thresholds_used,
        sources=_hold_sources([a for _, a in advice], longest),
    )


def antiplatelet_active(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """An active antiplatelet. Aspirin alone is information: it is usually continued, and its card
    speaks of aspirin only (stent windows concern P2Y12 inhibitors). A P2Y12 or other antiplatelet
    whose hold does not fit before the planned date is critical, as for anticoagulants."""
    drugs = facts.medications_in(ANTIPLATELET_CLASSES)
    if not drugs:
        return None
    non_aspirin = tuple(d for d in drugs if d.drug_class != "aspirin")
    aspirin_only = not non_aspirin
    shown = drugs if aspirin_only else non_aspirin
    advice = [hold_advice(d, t.hold_intervals, None) for d in non_aspirin]
    longest = max(advice, key=lambda a: a.hours or 0) if advice else None
    planned = facts.order.planned_date if facts.order else None
    timing = hold_timing(planned, facts.today, longest) if longest else None
    late = timing is not None and not timing.room
    sources = _hold_sources(advice, longest) if longest else ("S2", "S3")
    return Finding(
        rule="antiplatelet-active",
        indicator="info" if aspirin_only else "critical" if late else "warning",
        evidence=tuple(d.evidence for d in drugs),
        values={
            "drug": shown[0].ingredient,
            "drugs": ", ".join(sorted({d.ingredient for d in shown})),
            "with_aspirin": not aspirin_only and any(d.drug_class == "aspirin" for d in drugs),
            "aspirin_only": aspirin_only,
            "p2y12": any(d.drug_class == "p2y12" for d in drugs),
            "hold": longest.text if longest else None,
            "planned_date": planned.isoformat() if planned else None,
            **_timing_values(timing),
            "with_anticoagulant": bool(facts.medications_in(ANTICOAGULANT_CLASSES)),
            "combined": _combined_card_shown(facts, t),
        },
        thresholds_used={
            a.threshold_field: getattr(t.hold_intervals, a.threshold_field)
            for a in advice
            if a.threshold_field is not None
        },
        sources=sources,
    )


# Groups of antithrombotic therapy a clinician counts when saying "dual" or "triple" therapy.
_GROUP_OF_CLASS: dict[str, str] = {
    "vka": "oral anticoagulant",
    "doac-xa": "oral anticoagulant",
    "doac-thrombin": "oral anticoagulant",
    "heparin": "parenteral anticoagulant",
    "lmwh": "parenteral anticoagulant",
    "fondaparinux": "parenteral anticoagulant",
    "parenteral-thrombin": "parenteral anticoagulant",
    "p2y12": "P2Y12 inhibitor",
    "aspirin": "aspirin",
    "other-antiplatelet": "other antiplatelet",
}


def antithrombotic_groups(facts: ClinicalFacts) -> dict[str, list[MedicationFact]]:
    """Active antithrombotics by group, in the order of `_GROUP_OF_CLASS`."""
    groups: dict[str, list[MedicationFact]] = {}
    for drug_class, group in _GROUP_OF_CLASS.items():
        for drug in facts.medications:
            if drug.drug_class == drug_class:
                groups.setdefault(group, []).append(drug)
    return groups


def _combined_card_shown(facts: ClinicalFacts, t: Thresholds) -> bool:
    """Whether the combined card carries the plan, so a drug card may point to it instead of repeating
    it (not when an administrator switched the combined rule off)."""
    return len(antithrombotic_groups(facts)) >= 2 and t.rule("multiple-antithrombotics").enabled


def multiple_antithrombotics(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Two or more antithrombotic groups at once (clinical-rules.md §7, VA-MULTI-ANTITHROMBOTIC).

    One card names the combination; it is critical for an oral anticoagulant with a P2Y12 inhibitor,
    where stopping either has its own thrombotic risk (stent, atrial fibrillation) and the plan needs
    cardiology. The separate drug cards keep their hold intervals and leave the combined advice here.
    """
    groups = antithrombotic_groups(facts)
    if len(groups) < 2:
        return None
    oac_with_p2y12 = "oral anticoagulant" in groups and "P2Y12 inhibitor" in groups
    names = [", ".join(sorted({d.ingredient for d in drugs})) for drugs in groups.values()]
    return Finding(
        rule="multiple-antithrombotics",
        indicator="critical" if oac_with_p2y12 else "warning",
        evidence=tuple(d.evidence for drugs in groups.values() for d in drugs),
        values={
            "combination": " + ".join(names),
            "groups": " with ".join(groups),
            "count": len(groups),
            "therapy": {2: "dual", 3: "triple"}.get(len(groups), f"{len(groups)}-drug"),
            "oac_with_p2y12": oac_with_p2y12,
            "p2y12": "P2Y12 inhibitor" in groups,
        },
        sources=("S2", "S3"),
    )


def inr_high(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    inr = latest_result(facts, "inr", t.inr_lookback_days).current
    if inr is None or inr.value <= t.inr_warning_max:
        return None
    critical = inr.value > t.inr_critical_max
    return Finding(
        rule="inr-high",
        indicator="critical" if critical else "warning",
        evidence=(inr.evidence,),
        values={"inr": inr.value, "date": inr.effective.isoformat()},
        thresholds_used={"inr_warning_max": t.inr_warning_max, "inr_critical_max": t.inr_critical_max},
        sources=("S2",),
    )


def platelets_low(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    platelets = latest_result(facts, "platelets", t.platelets_lookback_days).current
    if platelets is None or platelets.value >= t.platelets_min_10e9_per_l:
        return None
    return Finding(
        rule="platelets-low",
        indicator="critical",
        evidence=(platelets.evidence,),
        values={"platelets": platelets.value, "date": platelets.effective.isoformat()},
        thresholds_used={"platelets_min_10e9_per_l": t.platelets_min_10e9_per_l},
        sources=("S2",),
    )


def coagulation_labs_missing(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """No current INR or platelet count: SIR 2019 wants both before a high-risk procedure.

    A result outside the look-back window is not used for a decision, but a critical one (platelets
    below the minimum, INR above the critical maximum) is named in the summary and makes the card a
    warning: it is a reason to recheck now, not a detail under "data used".
    """
    if facts.is_missing(DataCategory.OBSERVATIONS):
        return None  # data-unavailable says so; claiming "missing" would be a guess
    inr = latest_result(facts, "inr", t.inr_lookback_days)
    platelets = latest_result(facts, "platelets", t.platelets_lookback_days)
    missing = [name for name, result in (("INR", inr), ("platelet count", platelets)) if result.missing]
    if not missing:
        return None
    on_anticoagulant = bool(facts.medications_in(ANTICOAGULANT_CLASSES))
    stale = [r.stale for r in (inr, platelets) if r.stale is not None]
    stale_critical: list[str] = []
    if platelets.stale is not None and platelets.stale.value < t.platelets_min_10e9_per_l:
        p = platelets.stale
        days = (facts.today - p.effective).days
        stale_critical.append(
            f"platelets {p.value:.0f} ×10⁹/L {days} days ago (below {t.platelets_min_10e9_per_l:g})"
        )
    if inr.stale is not None and inr.stale.value > t.inr_critical_max:
        i = inr.stale
        days = (facts.today - i.effective).days
        stale_critical.append(f"INR {i.value:.1f} {days} days ago (above {t.inr_critical_max:g})")
    return Finding(
        rule="coagulation-labs-missing",
        indicator="warning" if on_anticoagulant or stale_critical else "info",
        evidence=tuple(s.evidence for s in stale),
        values={
            "missing": " and ".join(missing),
            "missing_inr": inr.missing,
            "missing_platelets": platelets.missing,
            "stale_inr_date": inr.stale.effective.isoformat() if inr.stale else None,
            "stale_platelets_date": platelets.stale.effective.isoformat() if platelets.stale else None,
            "stale_critical": "; ".join(stale_critical) or None,
            "on_anticoagulant": on_anticoagulant,
        },
        thresholds_used={
            "inr_lookback_days": t.inr_lookback_days,
            "platelets_lookback_days": t.platelets_lookback_days,
            **({"platelets_min_10e9_per_l": t.platelets_min_10e9_per_l} if platelets.stale else {}),
            **({"inr_critical_max": t.inr_critical_max} if inr.stale else {}),
        },
        sources=("S2",),
    )


def bleeding_disorder(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    disorders = facts.conditions_in("coagulopathy")
    if not disorders:
        return None
    return Finding(
        rule="bleeding-disorder",
        indicator="warning",
        evidence=tuple(c.evidence for c in disorders),
        values={"condition": disorders[0].display},
        sources=("S9", "S1"),
    )
