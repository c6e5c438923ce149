"""MedicationRequest and MedicationStatement → MedicationFact, identified down to the ingredient.

Matching order (clinical-rules.md §4): RxNorm ingredient code, ATC code, the shipped table of
clinical-drug codes, then generic and brand names in the text. The medication may be inline, a
contained Medication, or a Medication resource elsewhere in the data (prefetch, `_include`, the draft
orders); `medicationReference.display` is one more name (Epic's prefetch sends only "ELIQUIS 5 MG PO
TABS", with no Medication resource).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from fhir_mappings.codesets import ATC, RXNORM, CodeSets, DrugInfo, canonical_system
from fhir_mappings.json_access import (
    JsonObject,
    codings,
    concept_text,
    first_date,
    obj,
    objects,
    parse_date,
    reference_of,
    text,
)
from fhir_mappings.parsing import validation_problem
from rules.facts import Evidence, MedicationFact, ParseIssue, Unreadable

ACTIVE_REQUEST_STATUSES = frozenset({"active", "on-hold", "draft"})
ACTIVE_STATEMENT_STATUSES = frozenset({"active", "intended"})
_PRIORITY = {"rxnorm-ingredient": 0, "atc": 1, "rxnorm-clinical-drug": 2, "name": 3}


def _is_active(resource: JsonObject) -> bool:
    status = text(resource.get("status"))
    if resource.get("resourceType") == "MedicationStatement":
        return status in ACTIVE_STATEMENT_STATUSES
    return status in ACTIVE_REQUEST_STATUSES


def medication_concept(resource: JsonObject, medications: Mapping[str, JsonObject]) -> JsonObject:
    """The CodeableConcept naming the drug: inline, contained (`#id`) or a referenced Medication; the
    reference's `display` is its text when the Medication gives none."""
    inline = obj(resource.get("medicationCodeableConcept"))
    if inline:
        return inline
    reference = obj(resource.get("medicationReference"))
    concept = _referenced_concept(text(reference.get("reference")) or "", resource, medications)
    display = text(reference.get("display"))
    return {**concept, "text": display} if display and not text(concept.get("text")) else concept


def _referenced_concept(
    reference: str, resource: JsonObject, medications: Mapping[str, JsonObject]
) -> JsonObject:
    if reference.startswith("#"):
        for contained in objects(resource.get("contained")):
            if contained.get("id") == reference[1:]:
                return obj(contained.get("code"))
        return {}
    medication = medications.get(reference) or medications.get(reference.rsplit("/", 1)[-1])
    return obj(medication.get("code")) if medication else {}


def identify(concept: JsonObject, codesets: CodeSets) -> DrugInfo | None:
    candidates = [
        info for system, code, _ in codings(concept) if (info := codesets.drug_by_code(system, code))
    ]
    if candidates:
        return min(candidates, key=lambda info: _PRIORITY[info.matched_by])
    words = concept_text(concept)
    return codesets.drug_by_name(words) if words else None


def ended_on(resource: JsonObject) -> date | None:
    """The end of the period the medication was to be taken in: MedicationStatement.effectivePeriod.end,
    MedicationRequest.dispenseRequest.validityPeriod.end (whichever is later when both are given)."""
    ends = [
        parse_date(obj(resource.get("effectivePeriod")).get("end")),
        parse_date(obj(obj(resource.get("dispenseRequest")).get("validityPeriod")).get("end")),
    ]
    found = [e for e in ends if e is not None]
    return max(found) if found else None


def unidentifiable(concept: JsonObject) -> bool:
    """Nothing to identify the drug by: no RxNorm/ATC coding and no words at all (a local or NDC code
    alone, or a reference to a Medication that was not sent). A drug with a name the service does not
    know is not listed: it names a drug the rules do not need."""
    known = any(canonical_system(system) in (RXNORM, ATC) for system, _, _ in codings(concept))
    return not known and not concept_text(concept)


def index_medications(resources: Iterable[JsonObject]) -> dict[str, JsonObject]:
    """Medication resources by `Medication/id` and bare id, for medicationReference lookups."""
    index: dict[str, JsonObject] = {}
    for medication in resources:
        mid = text(medication.get("id"))
        if mid:
            index[f"Medication/{mid}"] = medication
            index[mid] = medication
    return index


def map_medications(
    resources: Iterable[JsonObject],
    medications: Mapping[str, JsonObject],
    codesets: CodeSets,
    issues: list[ParseIssue],
    unreadable: list[Unreadable] | None = None,
) -> tuple[MedicationFact, ...]:
    facts: list[MedicationFact] = []
    for resource in resources:
        if not _is_active(resource):
            continue
        concept = medication_concept(resource, medications)
        info = identify(concept, codesets)
        if info is None:
            if unreadable is not None and unidentifiable(concept):
                unreadable.append(
                    Unreadable(
                        kind="medication",
                        reference=reference_of(resource),
                        what="active medication with no drug code or name the service can read",
                    )
                )
            continue
        problem = validation_problem(resource)
        if problem is not None:
            issues.append(problem)
            continue
        display = concept_text(concept) or info.ingredient
        started = first_date(resource, "authoredOn", "effectiveDateTime", "effectivePeriod", "dateAsserted")
        facts.append(
            MedicationFact(
                ingredient=info.ingredient,
                drug_class=info.drug_class,
                display=display,
                matched_by=info.matched_by,
                started=started,
                ended=ended_on(resource),
                evidence=Evidence(reference=reference_of(resource), display=display, recorded=started),
            )
        )
    return tuple(facts)
