"""A patient's raw FHIR data, gathered from prefetch and fetches, and its mapping to ClinicalFacts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from fhir_mappings.allergies import map_allergies
from fhir_mappings.codesets import CodeSets
from fhir_mappings.conditions import map_conditions
from fhir_mappings.draft_orders import DraftOrderReading
from fhir_mappings.imaging import map_imaging
from fhir_mappings.json_access import JsonObject, codings, obj, reference_of, text
from fhir_mappings.medications import index_medications, map_medications
from fhir_mappings.observations import map_observations
from fhir_mappings.subjects import deceased_evidence, split_by_patient
from rules.facts import (
    AllergyFact,
    ClinicalFacts,
    ConditionFact,
    DataGap,
    Evidence,
    ImagingFact,
    LabResult,
    MedicationFact,
    ParseIssue,
    Unreadable,
)

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
    patient_id: str | None = None
    """`context.patientId` of the call: resources of any other patient are set aside, never used."""

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


@dataclass(frozen=True)
class MappedRecord:
    """What a PatientRecord maps to on its own: no draft order, no clock. Equal records map alike, so a
    caller may keep one for the next call with the same data (`cds_service.hooks.mapping_cache`)."""

    inpatient: bool | None
    conditions: tuple[ConditionFact, ...]
    labs: tuple[LabResult, ...]
    medications: tuple[MedicationFact, ...]
    allergies: tuple[AllergyFact, ...]
    imaging: tuple[ImagingFact, ...]
    gaps: tuple[DataGap, ...]
    issues_before_medications: tuple[ParseIssue, ...]
    """The record's own issues, then those of conditions and observations: the order they are reported in."""
    medication_issues: tuple[ParseIssue, ...]
    issues_after_medications: tuple[ParseIssue, ...]
    medication_index: Mapping[str, JsonObject]
    """Medication resources by reference, for medications named only in the draft orders."""
    unreadable: tuple[Unreadable, ...] = ()
    other_patient_resources: tuple[str, ...] = ()
    deceased: Evidence | None = None
    patient_id: str | None = None


def map_record(record: PatientRecord, codesets: CodeSets) -> MappedRecord:
    own, others = split_by_patient(record.resources, record.patient_id)

    def of(*resource_types: str) -> list[JsonObject]:
        return [r for t in resource_types for r in own.get(t, ())]

    before: list[ParseIssue] = list(record.issues)
    unreadable: list[Unreadable] = []
    conditions = map_conditions(_unique(of("Condition")), codesets, before, unreadable)
    labs = map_observations(_unique(of("Observation")), codesets, before, unreadable)
    medication_index = index_medications(of("Medication"))
    medication_issues: list[ParseIssue] = []
    medications = map_medications(
        _unique(of("MedicationRequest", "MedicationStatement")),
        medication_index,
        codesets,
        medication_issues,
        unreadable,
    )
    after: list[ParseIssue] = []
    allergies = map_allergies(_unique(of("AllergyIntolerance")), codesets, after)
    imaging = map_imaging(_unique(of("DiagnosticReport", "ImagingStudy", "Procedure")), codesets, after)
    return MappedRecord(
        unreadable=tuple(unreadable),
        other_patient_resources=tuple(others),
        deceased=next((e for p in of("Patient") if (e := deceased_evidence(p))), None),
        patient_id=record.patient_id,
        inpatient=_inpatient(of("Encounter")),
        conditions=conditions,
        labs=labs,
        medications=medications,
        allergies=allergies,
        imaging=imaging,
        gaps=tuple(record.gaps),
        issues_before_medications=tuple(before),
        medication_issues=tuple(medication_issues),
        issues_after_medications=tuple(after),
        medication_index=MappingProxyType(medication_index),
    )


def facts_from(
    mapped: MappedRecord, reading: DraftOrderReading, as_of: datetime, codesets: CodeSets
) -> ClinicalFacts:
    """The facts of one call: the mapped record plus the draft order and the medications it carries.

    Currency is decided here, against the call's clock: a medication whose period ended and a condition
    that abated before today are not current."""
    today = as_of.date()
    context_issues: list[ParseIssue] = []
    index: Mapping[str, JsonObject] = mapped.medication_index
    if reading.context_medications:  # a draft's Medication comes beside it in draftOrders
        index = {**index, **index_medications(reading.context_medications)}
    context_unreadable: list[Unreadable] = []
    drafts, draft_others = split_by_patient(
        {"draft": [*reading.selected_resources, *reading.context_medication_requests]}, mapped.patient_id
    )
    own_drafts = {id(r) for r in drafts.get("draft", ())}
    context_medications = map_medications(
        [r for r in reading.context_medication_requests if id(r) in own_drafts],
        index,
        codesets,
        context_issues,
        context_unreadable,
    )
    medications = tuple(
        m for m in mapped.medications + context_medications if m.ended is None or m.ended >= today
    )
    conditions = tuple(c for c in mapped.conditions if c.abated is None or c.abated > today)
    return ClinicalFacts(
        as_of=as_of,
        order=reading.order,
        inpatient=mapped.inpatient,
        conditions=conditions,
        labs=mapped.labs,
        medications=medications,
        unreadable=mapped.unreadable + tuple(context_unreadable),
        other_patient_resources=mapped.other_patient_resources + tuple(draft_others),
        deceased=mapped.deceased,
        allergies=mapped.allergies,
        imaging=mapped.imaging,
        gaps=mapped.gaps,
        parse_issues=(
            *mapped.issues_before_medications,
            *mapped.medication_issues,
            *context_issues,
            *mapped.issues_after_medications,
        ),
    )


def build_facts(
    record: PatientRecord, reading: DraftOrderReading, as_of: datetime, codesets: CodeSets
) -> ClinicalFacts:
    return facts_from(map_record(record, codesets), reading, as_of, codesets)
