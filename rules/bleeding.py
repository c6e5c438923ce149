"""Bleeding risk: antithrombotic drugs, coagulation labs and bleeding disorders.

Vertebral augmentation is a high bleeding-risk procedure (ASRA 2018, S3; SIR 2019, S2).
"""

from __future__ import annotations

from rules.facts import ANTICOAGULANT_CLASSES, ANTIPLATELET_CLASSES, ClinicalFacts, DataCategory
from rules.findings import Finding, Scalar
from rules.holds import hold_advice, room_before
from rules.labs import latest_result, renal_clearance_ml_per_min
from rules.thresholds import Thresholds


def anticoagulant_active(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """An active anticoagulant: how long to hold it, and whether the planned date leaves room."""
    drugs = facts.medications_in(ANTICOAGULANT_CLASSES)
    if not drugs or facts.order is None:
        return None
    renal = renal_clearance_ml_per_min(facts, t.renal_lookback_days)
    advice = [(drug, hold_advice(drug, t.hold_intervals, renal)) for drug in drugs]
    longest_drug, longest = max(advice, key=lambda pair: pair[1].hours or 0)
    room = room_before(facts.order.planned_date, facts.today, longest)
    values: dict[str, Scalar] = {
        "drug": longest_drug.ingredient,
        "drugs": ", ".join(sorted({d.ingredient for d in drugs})),
        "hold": longest.text,
        "hold_hours": longest.hours,
        "hold_basis": longest.basis,
        "planned_date": facts.order.planned_date.isoformat() if facts.order.planned_date else None,
        "room_for_hold": room,
        "renal_value": renal.value if renal else None,
        "renal_kind": renal.kind if renal else None,
        "on_vka": any(d.drug_class == "vka" for d in drugs),
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
        indicator="warning",
        evidence=evidence,
        values=values,
        thresholds_used=thresholds_used,
        sources=("S4", "S2", "S3"),
    )


def antiplatelet_active(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """An active antiplatelet. Aspirin alone is information: it is usually continued."""
    drugs = facts.medications_in(ANTIPLATELET_CLASSES)
    if not drugs:
        return None
    non_aspirin = tuple(d for d in drugs if d.drug_class != "aspirin")
    aspirin_only = not non_aspirin
    shown = drugs if aspirin_only else non_aspirin
    advice = [hold_advice(d, t.hold_intervals, None) for d in non_aspirin]
    longest = max(advice, key=lambda a: a.hours or 0) if advice else None
    with_anticoagulant = bool(facts.medications_in(ANTICOAGULANT_CLASSES))
    return Finding(
        rule="antiplatelet-active",
        indicator="info" if aspirin_only else "warning",
        evidence=tuple(d.evidence for d in drugs),
        values={
            "drug": shown[0].ingredient,
            "drugs": ", ".join(sorted({d.ingredient for d in shown})),
            "with_aspirin": not aspirin_only and any(d.drug_class == "aspirin" for d in drugs),
            "aspirin_only": aspirin_only,
            "hold": longest.text if longest else None,
            "with_anticoagulant": with_anticoagulant,
        },
        thresholds_used={
            a.threshold_field: getattr(t.hold_intervals, a.threshold_field)
            for a in advice
            if a.threshold_field is not None
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
    """No current INR or platelet count: SIR 2019 wants both before a high-risk procedure."""
    if facts.is_missing(DataCategory.OBSERVATIONS):
        return None  # data-unavailable says so; claiming "missing" would be a guess
    inr = latest_result(facts, "inr", t.inr_lookback_days)
    platelets = latest_result(facts, "platelets", t.platelets_lookback_days)
    missing = [name for name, result in (("INR", inr), ("platelet count", platelets)) if result.missing]
    if not missing:
        return None
    on_anticoagulant = bool(facts.medications_in(ANTICOAGULANT_CLASSES))
    stale = [r.stale for r in (inr, platelets) if r.stale is not None]
    return Finding(
        rule="coagulation-labs-missing",
        indicator="warning" if on_anticoagulant else "info",
        evidence=tuple(s.evidence for s in stale),
        values={
            "missing": " and ".join(missing),
            "missing_inr": inr.missing,
            "missing_platelets": platelets.missing,
            "stale_inr_date": inr.stale.effective.isoformat() if inr.stale else None,
            "stale_platelets_date": platelets.stale.effective.isoformat() if platelets.stale else None,
            "on_anticoagulant": on_anticoagulant,
        },
        thresholds_used={
            "inr_lookback_days": t.inr_lookback_days,
            "platelets_lookback_days": t.platelets_lookback_days,
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
