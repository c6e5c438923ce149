"""The rule catalogue and `evaluate()`: run every enabled rule over the facts, most severe first."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rules import bleeding, contraindications, data_gaps, eligibility, follow_up, levels, record_checks
from rules.facts import ClinicalFacts
from rules.findings import Evaluation, Finding
from rules.thresholds import RULE_IDS, Thresholds

Rule = Callable[[ClinicalFacts, Thresholds], Finding | None]

CATALOG: Mapping[str, Rule] = {
    "anticoagulant-active": bleeding.anticoagulant_active,
    "antiplatelet-active": bleeding.antiplatelet_active,
    "multiple-antithrombotics": bleeding.multiple_antithrombotics,
    "inr-high": bleeding.inr_high,
    "platelets-low": bleeding.platelets_low,
    "coagulation-labs-missing": bleeding.coagulation_labs_missing,
    "bleeding-disorder": bleeding.bleeding_disorder,
    "spinal-infection": contraindications.spinal_infection,
    "systemic-infection": contraindications.systemic_infection,
    "pregnancy": contraindications.pregnancy,
    "neurologic-compromise": contraindications.neurologic_compromise,
    "cement-contrast-allergy": contraindications.cement_contrast_allergy,
    "too-many-levels": levels.too_many_levels,
    "copd-multilevel": levels.copd_multilevel,
    "upper-thoracic-level": levels.upper_thoracic_level,
    "level-count-not-stated": levels.level_count_not_stated,
    "eligibility": eligibility.eligibility,
    "osteoporosis-follow-up": follow_up.osteoporosis_follow_up,
    "neoplastic-indication": follow_up.neoplastic_indication,
    "data-unavailable": data_gaps.data_unavailable,
    "other-patient-data": record_checks.other_patient_data,
    "patient-deceased": record_checks.patient_deceased,
}

assert tuple(CATALOG) == RULE_IDS, "the catalogue and Thresholds.rules must list the same rules"

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def evaluate(
    facts: ClinicalFacts, thresholds: Thresholds, thresholds_version: int, at_signing: bool = False
) -> Evaluation:
    """Run every enabled rule. Without a vertebral augmentation order there is nothing to say.

    An admin may change a rule's indicator, but at signing a critical finding stays critical: the
    last chance to stop an unsafe order is not the place to soften it.
    """
    if facts.order is None:
        return Evaluation(as_of=facts.as_of, thresholds_version=thresholds_version, findings=(), rules_run=())
    findings: list[Finding] = []
    rules_run: list[str] = []
    for rule_id, rule in CATALOG.items():
        setting = thresholds.rule(rule_id)
        if not setting.enabled:
            continue
        rules_run.append(rule_id)
        finding = rule(facts, thresholds)
        if finding is None:
            continue
        keep_critical = at_signing and finding.indicator == "critical"
        if setting.indicator is not None and not keep_critical:
            finding = finding.model_copy(update={"indicator": setting.indicator})
        findings.append(finding)
    findings.sort(key=lambda f: _SEVERITY[f.indicator])
    return Evaluation(
        as_of=facts.as_of,
        thresholds_version=thresholds_version,
        findings=tuple(findings),
        rules_run=tuple(rules_run),
        parse_issues=facts.parse_issues,
    )
