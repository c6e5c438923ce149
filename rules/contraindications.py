"""Contraindications: infection, pregnancy, neurological compromise and allergy.

Sources disagree on absolute vs relative (clinical-rules.md §5); the defaults follow the CMS LCD (S1)
and RAND/UCLA (S6) for the absolute ones, and every indicator is an admin setting.
"""

from __future__ import annotations

from datetime import timedelta

from rules.facts import ClinicalFacts, Evidence
from rules.findings import Finding
from rules.thresholds import Indicator, Thresholds

# A positive hCG older than this no longer says the patient is pregnant now.
_HCG_RELEVANT_DAYS = 270


def _condition_finding(
    facts: ClinicalFacts, rule: str, groups: tuple[str, ...], indicator: Indicator, sources: tuple[str, ...]
) -> Finding | None:
    matches = facts.conditions_in(*groups)
    if not matches:
        return None
    return Finding(
        rule=rule,
        indicator=indicator,
        evidence=tuple(c.evidence for c in matches),
        values={"condition": matches[0].display, "count": len(matches)},
        sources=sources,
    )


def spinal_infection(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    return _condition_finding(
        facts, "spinal-infection", ("spinal-infection",), "critical", ("S6", "S1", "S9")
    )


def systemic_infection(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    return _condition_finding(facts, "systemic-infection", ("systemic-infection",), "critical", ("S6", "S9"))


def neurologic_compromise(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    return _condition_finding(
        facts, "neurologic-compromise", ("neurologic-compromise",), "warning", ("S1", "S9")
    )


def pregnancy(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """A pregnancy diagnosis, or a recent positive hCG (CMS LCD absolute exclusion)."""
    evidence: list[Evidence] = [c.evidence for c in facts.conditions_in("pregnancy")]
    recent = facts.today - timedelta(days=_HCG_RELEVANT_DAYS)
    hcg = [r for r in facts.labs_of("hcg") if r.positive and r.effective >= recent]
    evidence.extend(
        r.evidence.model_copy(update={"display": f"positive hCG ({r.evidence.display})"}) for r in hcg[:1]
    )
    # US Core pregnancy status: the newest answer in the window decides ("not pregnant" later wins).
    status = [r for r in facts.labs_of("pregnancy-status") if r.effective >= recent][:1]
    evidence.extend(r.evidence for r in status if r.positive)
    if not evidence:
        return None
    return Finding(
        rule="pregnancy",
        indicator="critical",
        evidence=tuple(evidence),
        values={"basis": evidence[0].display},
        sources=("S1",),
    )


def cement_contrast_allergy(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    evidence = [a.evidence for a in facts.allergies]
    evidence.extend(c.evidence for c in facts.conditions_in("contrast-allergy"))
    if not evidence:
        return None
    substances = sorted({a.substance.replace("-", " ") for a in facts.allergies}) or ["contrast"]
    return Finding(
        rule="cement-contrast-allergy",
        indicator="warning",
        evidence=tuple(evidence),
        values={"substances": " and ".join(substances), "basis": evidence[0].display},
        sources=("S9", "S1"),
    )
