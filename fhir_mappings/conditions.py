"""Condition → ConditionFact: active, not refuted, in one of the code-set groups the rules use."""

from __future__ import annotations

from collections.abc import Iterable

from fhir_mappings.codesets import CodeSets
from fhir_mappings.json_access import (
    JsonObject,
    codings,
    concept_text,
    first_date,
    obj,
    reference_of,
    status_code,
)
from fhir_mappings.parsing import validation_problem
from rules.facts import ConditionFact, Evidence, ParseIssue

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION_STATUSES = frozenset({"refuted", "entered-in-error"})


def is_current(condition: JsonObject) -> bool:
    """Active/recurrent/relapsed and not refuted. A missing clinicalStatus counts as active unless abated."""
    verification = status_code(condition.get("verificationStatus"))
    if verification in EXCLUDED_VERIFICATION_STATUSES:
        return False
    clinical = status_code(condition.get("clinicalStatus"))
    if clinical is None:
        return not any(key.startswith("abatement") for key in condition)
    return clinical in ACTIVE_CLINICAL_STATUSES


def map_conditions(
    resources: Iterable[JsonObject], codesets: CodeSets, issues: list[ParseIssue]
) -> tuple[ConditionFact, ...]:
    facts: list[ConditionFact] = []
    for resource in resources:
        code_concept = obj(resource.get("code"))
        matched = [(s, c, d, codesets.condition_groups(s, c)) for s, c, d in codings(code_concept)]
        matched = [m for m in matched if m[3]]
        if not matched or not is_current(resource):
            continue
        problem = validation_problem(resource)
        if problem is not None:
            issues.append(problem)
            continue
        groups = frozenset().union(*(m[3] for m in matched))
        system, code, display, _ = matched[0]
        words = display or concept_text(code_concept) or code
        onset = first_date(resource, "onsetDateTime", "onsetPeriod", "recordedDate")
        facts.append(
            ConditionFact(
                groups=groups,
                code=code,
                system=system,
                display=words,
                onset=onset,
                evidence=Evidence(reference=reference_of(resource), display=words, recorded=onset),
            )
        )
    return tuple(facts)
