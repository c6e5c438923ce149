"""Checks on the record itself: data of another patient in the call, and a patient recorded as dead.

Neither is a clinical judgement: both say that the decision support cannot be trusted for this call
until someone looks at the record, so both are critical.
"""

from __future__ import annotations

from collections import Counter

from rules.facts import ClinicalFacts
from rules.findings import Finding
from rules.thresholds import Thresholds


def other_patient_data(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Resources of another patient came with the call: they were ignored, and the EHR should know."""
    if not facts.other_patient_resources:
        return None
    counts = Counter(facts.other_patient_resources)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return Finding(
        rule="other-patient-data",
        indicator="critical",
        values={"count": len(facts.other_patient_resources), "kinds": kinds},
        sources=("S17",),
    )


def patient_deceased(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    if facts.deceased is None:
        return None
    return Finding(
        rule="patient-deceased",
        indicator="critical",
        evidence=(facts.deceased,),
        values={"basis": facts.deceased.display},
        sources=("S17",),
    )
