"""A patient's raw FHIR data, gathered from prefetch and fetches, and its mapping to ClinicalFacts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fhir_mappings.allergies import map_allergies
from fhir_mappings.codesets import CodeSets
from fhir_mappings.conditions import map_conditions
from fhir_mappings.draft_orders import DraftOrderReading
from fhir_mappings.imaging import map_imaging
from fhir_mappings.json_access import JsonObject, codings, obj, reference_of, text
from fhir_mappings.medications import index_medications, map_medications
from fhir_mappings.observations import map_observations
from rules.facts import ClinicalFacts, DataGap, ParseIssue

# Encounter.class codes (v3 ActCode) that mean the patient is in hospital: the LCD's pain threshold
# is higher for hospitalised patients (S1).
_INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
_OUTPATIENT_CLASSES = frozenset({"AMB", "VR", "HH", "FLD", "PRENC"})
# EMER, OBSENC and SS are neither: the setting stays unknown and the card says which limit it used.


@dataclass
class PatientRecord:
    """Raw resources by type, plus the categories that could not be read and resources skipped."""

    resources: dict[str, list[JsonObject]] = field(default_factory=lambda: defaultdict(list))
    gaps: list[DataGap] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)

    def add(self, resources: Iterable[JsonObject]) -> None:
        for resource in resources:
            resource_type = resource.get("resourceType")
            if isinstance(resource_type, str):
                self.resources[resource_type].append(resource)

    def of(self, *resource_types: str) -> list[JsonObject]:
        return [r for t in resource_types for r in self.resources.get(t, ())]


def _inpatient(encounters: list[JsonObject]) -> bool | None:
    for encounter in encounters:
        klass = obj(encounter.get("class"))
        code = text(klass.get("code"))
        if code in _INPATIENT_CLASSES:
            return True
        if code in _OUTPATIENT_CLASSES:
            return False
        for _, c, _ in codings({"coding": [klass]}):
            if c in _INPATIENT_CLASSES:
                return True
    return None


def _unique(resources: list[JsonObject]) -> list[JsonObject]:
    """Drop duplicates that arrive through two routes (a prefetch key and an `_include`)."""
    seen: set[str] = set()
    unique: list[JsonObject] = []
    for resource in resources:
        key = reference_of(resource)
        if key.endswith("(no id)") or key not in seen:
            seen.add(key)
            unique.append(resource)
    return unique


def build_facts(
    record: PatientRecord, reading: DraftOrderReading, as_of: datetime, codesets: CodeSets
) -> ClinicalFacts:
    issues = list(record.issues)
    medications = index_medications(record.of("Medication"))
    medication_resources = _unique(record.of("MedicationRequest", "MedicationStatement"))
    medication_resources += reading.context_medication_requests
    return ClinicalFacts(
        as_of=as_of,
        order=reading.order,
        inpatient=_inpatient(record.of("Encounter")),
        conditions=map_conditions(_unique(record.of("Condition")), codesets, issues),
        labs=map_observations(_unique(record.of("Observation")), codesets, issues),
        medications=map_medications(medication_resources, medications, codesets, issues),
        allergies=map_allergies(_unique(record.of("AllergyIntolerance")), codesets, issues),
        imaging=map_imaging(
            _unique(record.of("DiagnosticReport", "ImagingStudy", "Procedure")), codesets, issues
        ),
        gaps=tuple(record.gaps),
        parse_issues=tuple(issues),
    )
