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


_CANCER_GROUPS = ("myeloma", "bone-metastasis", "primary-spine-tumor")
_OTHER_FRACTURE_GROUPS = ("osteoporotic-vcf", "collapsed-vertebra")


def neoplastic_indication(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Myeloma, metastasis or spine tumour: biopsy during the procedure, coordinate with oncology.

    The card names the cancer, not the pathological-fracture code, when both are on record.

    Decision (issue 16): metastatic cancer coded without a bone site (C77-C79 other than C79.51/.52,
    C80.0) together with a new vertebral fracture coded as osteoporotic or collapsed still gets this
    card, as information and worded with the uncertainty: the fracture may be osteoporotic or a
    metastasis, which a biopsy during the procedure can settle, and oncology should know of it. "New"
    is an onset within `fracture_age_warning_days`, or no onset at all (it cannot be ruled out). The
    eligibility card does not treat such a fracture as neoplastic (conservative care still applies),
    since nothing on record says it is.
    """
    found = facts.conditions_in(*NEOPLASTIC_GROUPS)
    if found:
        cancer = facts.conditions_in(*_CANCER_GROUPS) or found
        return Finding(
            rule="neoplastic-indication",
            indicator="info",
            evidence=tuple(c.evidence for c in found),
            values={"condition": cancer[0].display, "uncertain": False},
            sources=("S7", "S5"),
        )
    metastatic = facts.conditions_in("metastatic-cancer")
    recent = facts.today - timedelta(days=t.fracture_age_warning_days)
    new_fractures = [
        c for c in facts.conditions_in(*_OTHER_FRACTURE_GROUPS) if c.onset is None or c.onset >= recent
    ]
    if not metastatic or not new_fractures:
        return None
    return Finding(
        rule="neoplastic-indication",
        indicator="info",
        evidence=tuple(c.evidence for c in (*metastatic, *new_fractures)),
        values={"condition": metastatic[0].display, "uncertain": True},
        thresholds_used={"fracture_age_warning_days": t.fracture_age_warning_days},
        sources=("S5", "S7"),
    )
