"""Follow-up cards: osteoporosis work-up after an osteoporotic fracture; oncology for neoplastic ones."""

from __future__ import annotations

from datetime import timedelta

from rules.eligibility import NEOPLASTIC_GROUPS
from rules.facts import ClinicalFacts, DataCategory
from rules.findings import Finding
from rules.thresholds import Thresholds


def osteoporosis_follow_up(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """CMS LCD and RAND/UCLA: refer for BMD and osteoporosis treatment after an osteoporotic VCF."""
    fractures = facts.conditions_in("osteoporotic-vcf")
    if not fractures and not (
        facts.conditions_in("osteoporosis") and facts.conditions_in("collapsed-vertebra")
    ):
        return None
    cutoff = facts.today - timedelta(days=t.dxa_lookback_days)
    has_recent_dxa = any(i.kind == "dxa" and i.performed >= cutoff for i in facts.imaging) or any(
        r.effective >= cutoff for r in facts.labs_of("t-score")
    )
    therapy = [m for m in facts.medications if m.drug_class == "osteoporosis-therapy"]
    missing_dxa = not has_recent_dxa and not facts.is_missing(DataCategory.IMAGING)
    missing_therapy = not therapy and not facts.is_missing(DataCategory.MEDICATIONS)
    if not missing_dxa and not missing_therapy:
        return None
    return Finding(
        rule="osteoporosis-follow-up",
        indicator="info",
        evidence=tuple(c.evidence for c in fractures) + tuple(m.evidence for m in therapy),
        values={"missing_dxa": missing_dxa, "missing_therapy": missing_therapy},
        thresholds_used={"dxa_lookback_days": t.dxa_lookback_days},
        sources=("S1", "S6"),
    )


def neoplastic_indication(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Myeloma, metastasis or spine tumour: biopsy during the procedure, coordinate with oncology."""
    found = facts.conditions_in(*NEOPLASTIC_GROUPS)
    if not found:
        return None
    return Finding(
        rule="neoplastic-indication",
        indicator="info",
        evidence=tuple(c.evidence for c in found),
        values={"condition": found[0].display},
        sources=("S7", "S5"),
    )
