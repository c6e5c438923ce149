"""How many vertebrae are treated in one session, and which ones."""

from __future__ import annotations

from rules.facts import ClinicalFacts, DraftOrder, Evidence
from rules.findings import Finding
from rules.labs import latest_result
from rules.thresholds import Thresholds

SEVERE_LUNG_GROUPS = ("copd", "emphysema", "severe-lung-other", "home-oxygen")
UPPER_THORACIC_LEVELS = frozenset({"T1", "T2", "T3", "T4"})
CERVICAL_LEVELS = frozenset({f"C{n}" for n in range(1, 8)})
"""22510 covers the cervicothoracic spine, but payer criteria and the usual indication (osteoporotic
fracture, as the seed articles select) concern thoracic and lumbar levels: a cervical level gets the
same coverage card as T1-T4. The code 22510 alone names no level (it is used for every thoracic
vertebroplasty too), so only a named cervical vertebra counts."""


def levels_counted(order: DraftOrder) -> str:
    """What the count rests on, for the card: "3 (body site: T11, T12, L1)", "2 (quantity)",
    "1 (assumed: the order names no level)". Each level is named with where the order says it."""
    if order.level_count_source is None:
        return f"{order.level_count} (assumed: the order names no level and gives no count)"
    by_source: dict[str, list[str]] = {}
    for origin in order.level_origins:
        by_source.setdefault(origin.source, []).append(origin.level)
    named = "; ".join(f"{source}: {', '.join(levels)}" for source, levels in by_source.items())
    basis = order.level_count_source if not named or order.level_count != len(order.level_origins) else ""
    said = ", ".join(p for p in (basis, named) if p)
    return f"{order.level_count} ({said})"


def severe_lung_disease(facts: ClinicalFacts, t: Thresholds) -> tuple[Evidence, ...]:
    """Evidence of COPD or severe lung disease: a diagnosis, FEV1 < limit % predicted, or low SpO2."""
    evidence = [c.evidence for c in facts.conditions_in(*SEVERE_LUNG_GROUPS)]
    fev1 = latest_result(facts, "fev1-percent-predicted", t.lung_function_lookback_days).current
    if fev1 is not None and fev1.value < t.fev1_severe_percent_predicted:
        evidence.append(fev1.evidence)
    spo2 = latest_result(facts, "spo2", t.spo2_lookback_days).current
    if spo2 is not None and spo2.value < t.spo2_severe_percent:
        evidence.append(spo2.evidence)
    return tuple(evidence)


def too_many_levels(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """More levels than the session limit: a relative contraindication in the CMS LCD."""
    if facts.order is None or facts.order.level_count <= t.max_levels_per_session:
        return None
    return Finding(
        rule="too-many-levels",
        indicator="warning",
        values={
            "levels": facts.order.level_count,
            "level_names": ", ".join(facts.order.levels) or None,
            "levels_counted": levels_counted(facts.order),
        },
        thresholds_used={"max_levels_per_session": t.max_levels_per_session},
        sources=("S1",),
    )


def copd_multilevel(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """COPD or severe lung disease with more levels than the lung limit in one session."""
    if facts.order is None or facts.order.level_count <= t.max_levels_severe_lung:
        return None
    evidence = severe_lung_disease(facts, t)
    if not evidence:
        return None
    return Finding(
        rule="copd-multilevel",
        indicator="warning",
        evidence=evidence,
        values={
            "levels": facts.order.level_count,
            "level_names": ", ".join(facts.order.levels) or None,
            "lung_evidence": evidence[0].display,
            "levels_counted": levels_counted(facts.order),
            "lung_limit": t.max_levels_severe_lung,
        },
        thresholds_used={"max_levels_severe_lung": t.max_levels_severe_lung},
        sources=("S12", "S13", "INSTITUTIONAL"),
    )


def upper_thoracic_level(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """Cervical or T1-T4 levels: payer policies (eviCore) exclude T1-T4 and cover thoracic and lumbar
    fractures; these levels are technically harder too."""
    if facts.order is None:
        return None
    upper = [level for level in facts.order.levels if level in UPPER_THORACIC_LEVELS | CERVICAL_LEVELS]
    if not upper:
        return None
    return Finding(
        rule="upper-thoracic-level",
        indicator="info",
        values={
            "level_names": ", ".join(upper),
            "cervical": any(lv in CERVICAL_LEVELS for lv in upper),
            "levels_counted": levels_counted(facts.order),
        },
        sources=("S10",),
    )


def level_count_not_stated(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    """The order does not say how many levels (Epic sends none of bodySite, quantity or add-on lines): the
    count is taken as one, so the session limit and the lung limit were not checked. Said, never silently
    passed; a warning when there is severe lung disease, whose limit is the lower one."""
    if facts.order is None or facts.order.level_count_stated or facts.order.is_demo_stand_in:
        return None  # a demo stand-in is a spine imaging order: it has no levels to state
    evidence = severe_lung_disease(facts, t)
    return Finding(
        rule="level-count-not-stated",
        indicator="warning" if evidence else "info",
        evidence=evidence,
        values={
            "session_limit": t.max_levels_per_session,
            "lung_limit": t.max_levels_severe_lung,
            "lung_evidence": evidence[0].display if evidence else None,
        },
        thresholds_used={
            "max_levels_per_session": t.max_levels_per_session,
            "max_levels_severe_lung": t.max_levels_severe_lung,
        },
        sources=("S1", "S12", "INSTITUTIONAL") if evidence else ("S1",),
    )
