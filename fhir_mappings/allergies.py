"""AllergyIntolerance → AllergyFact for bone cement (PMMA) and iodinated contrast."""

from __future__ import annotations

from collections.abc import Iterable

from fhir_mappings.codesets import CodeSets
from fhir_mappings.json_access import (
    JsonObject,
    codings,
    concept_text,
    obj,
    objects,
    reference_of,
    status_code,
)
from fhir_mappings.parsing import validation_problem
from rules.facts import AllergyFact, Evidence, ParseIssue

_EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_INACTIVE_CLINICAL = frozenset({"inactive", "resolved"})


def _substance(resource: JsonObject, codesets: CodeSets) -> str | None:
    concepts = [obj(resource.get("code"))]
    concepts.extend(obj(r.get("substance")) for r in objects(resource.get("reaction")))
    for concept in concepts:
        for system, code, _ in codings(concept):
            found = codesets.allergy_substance(system, code)
            if found:
                return found
        words = concept_text(concept)
        found = codesets.allergy_substance_by_text(words) if words else None
        if found:
            return found
    return None


def map_allergies(
    resources: Iterable[JsonObject], codesets: CodeSets, issues: list[ParseIssue]
) -> tuple[AllergyFact, ...]:
    facts: list[AllergyFact] = []
    for resource in resources:
        if status_code(resource.get("verificationStatus")) in _EXCLUDED_VERIFICATION:
            continue
        if status_code(resource.get("clinicalStatus")) in _INACTIVE_CLINICAL:
            continue
        substance = _substance(resource, codesets)
        if substance is None:
            continue
        problem = validation_problem(resource)
        if problem is not None:
            issues.append(problem)
            continue
        display = concept_text(resource.get("code")) or substance
        facts.append(
            AllergyFact(
                substance="bone-cement" if substance == "bone-cement" else "iodinated-contrast",
                display=display,
                evidence=Evidence(reference=reference_of(resource), display=f"allergy: {display}"),
            )
        )
    return tuple(facts)
