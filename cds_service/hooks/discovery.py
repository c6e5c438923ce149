"""The two services and their prefetch templates (CDS Hooks 2.0 discovery).

Templates use only 2.0 tokens (`{{context.patientId}}`, `{{context.encounterId}}`) and plain R4
search syntax. Each key feeds one data category; a key that is absent, failed or unreadable is
fetched by the service itself, and a category that cannot be had becomes a `data-unavailable` card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappings.codesets import CodeSets
from rules.facts import DataCategory

SELECT_SERVICE_ID = "vertebral-augmentation-select"
SIGN_SERVICE_ID = "vertebral-augmentation-sign"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
# CDS Hooks 3.0 readiness, without a field a 2.0 client would not expect: the versions travel in
# `extension` (allowed on the discovery response and on each service in 2.0 and 3.0). The service
# implements CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/) and reads the 3.0 ballot's additions it
# understands (SMART v2 scopes, non-adherence override reasons). Hook versions: the hook pages'
# `hookVersion` metadata (order-select 1.0, order-sign 1.0).
SPEC_VERSION = "2.0"
COMPATIBLE_SPEC_VERSIONS = ("2.0", "3.0.0-ballot")
EXTENSION_KEY = "org.vertebral-cds"


@dataclass(frozen=True)
class PrefetchKey:
    key: str
    template: str
    category: DataCategory
    resource_types: frozenset[str]
    """Types accepted in the answer (a search may `_include` Medication)."""

    @property
    def needs_encounter(self) -> bool:
        return "{{context.encounterId}}" in self.template


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    hook_version: str
    title: str
    description: str
    usage_requirements: str

    def discovery_entry(
        self, prefetch: tuple[PrefetchKey, ...], description_tail: str = ""
    ) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description + description_tail,
            "usageRequirements": self.usage_requirements,
            "prefetch": {p.key: p.template for p in prefetch},
            "extension": {EXTENSION_KEY: {"hookVersion": self.hook_version, "specVersion": SPEC_VERSION}},
        }


_USAGE = (
    "Fires for ServiceRequests coded CPT 22510-22515 (vertebroplasty, kyphoplasty), the legacy and HCPCS/"
    "ICD-10-PCS codes, an admin-configured SNOMED list, or matching text. Reads Conditions, Observations, "
    "MedicationRequests/Statements, AllergyIntolerances and spine imaging; prefetch is used when sent and "
    "anything missing is fetched from fhirServer with fhirAuthorization."
)

SERVICES: tuple[ServiceDefinition, ...] = (
    ServiceDefinition(
        id=SELECT_SERVICE_ID,
        hook="order-select",
        hook_version="1.0",
        title="Vertebral augmentation: eligibility and risk",
        description="When a vertebroplasty or kyphoplasty order is selected: anticoagulants and bleeding "
        "labs, COPD with multiple levels, infection and other contraindications, and coverage eligibility.",
        usage_requirements=_USAGE,
    ),
    ServiceDefinition(
        id=SIGN_SERVICE_ID,
        hook="order-sign",
        hook_version="1.0",
        title="Vertebral augmentation: check at signing",
        description="The same eligibility and risk checks when a vertebral augmentation order is signed; "
        "unresolved critical findings stay critical.",
        usage_requirements=_USAGE,
    ),
)
SERVICES_BY_ID = {service.id: service for service in SERVICES}


def imaging_procedure_codes(codesets: CodeSets) -> list[str]:
    """`system|code` tokens of the spine imaging and DXA procedures (CPT and SNOMED)."""
    tokens = []
    for set_name, entry in codesets.entries():
        system = entry.get("system")
        if set_name == "imaging" and system in (CPT, SNOMED) and entry.get("match", "exact") == "exact":
            tokens.append(f"{system}|{entry['code']}")
    return sorted(set(tokens))


def prefetch_keys(codesets: CodeSets) -> tuple[PrefetchKey, ...]:
    patient = "patient={{context.patientId}}"
    loinc = ",".join(f"{LOINC}|{code}" for code in codesets.loinc_codes())
    imaging_codes = ",".join(imaging_procedure_codes(codesets))
    return (
        PrefetchKey("patient", "Patient/{{context.patientId}}", DataCategory.PATIENT, frozenset({"Patient"})),
        PrefetchKey(
            "conditions",
            f"Condition?{patient}&clinical-status=active,recurrence,relapse",
            DataCategory.CONDITIONS,
            frozenset({"Condition"}),
        ),
        PrefetchKey(
            "observations",
            f"Observation?{patient}&code={loinc}",
            DataCategory.OBSERVATIONS,
            frozenset({"Observation"}),
        ),
        PrefetchKey(
            "medicationRequests",
            f"MedicationRequest?{patient}&status=active,on-hold,draft&_include=MedicationRequest:medication",
            DataCategory.MEDICATIONS,
            frozenset({"MedicationRequest", "Medication"}),
        ),
        PrefetchKey(
            "medicationStatements",
            f"MedicationStatement?{patient}&status=active,intended&_include=MedicationStatement:medication",
            DataCategory.MEDICATIONS,
            frozenset({"MedicationStatement", "Medication"}),
        ),
        PrefetchKey(
            "allergies",
            f"AllergyIntolerance?{patient}",
            DataCategory.ALLERGIES,
            frozenset({"AllergyIntolerance"}),
        ),
        PrefetchKey(
            "imagingReports",
            f"DiagnosticReport?{patient}&category={LOINC}|LP29684-5",
            DataCategory.IMAGING,
            frozenset({"DiagnosticReport"}),
        ),
        PrefetchKey(
            "imagingStudies", f"ImagingStudy?{patient}", DataCategory.IMAGING, frozenset({"ImagingStudy"})
        ),
        PrefetchKey(
            "imagingProcedures",
            f"Procedure?{patient}&code={imaging_codes}",
            DataCategory.IMAGING,
            frozenset({"Procedure"}),
        ),
        PrefetchKey(
            "encounter", "Encounter/{{context.encounterId}}", DataCategory.ENCOUNTER, frozenset({"Encounter"})
        ),
    )


def demo_stand_in_codes(codesets: CodeSets) -> list[tuple[str, str]]:
    """(code, display) of the spine imaging codes the sandbox demo mapping accepts as an order."""
    found = {
        (str(entry["code"]), str(entry.get("display", "")).removesuffix(" (sandbox demo stand-in)"))
        for set_name, entry in codesets.entries()
        if set_name == "procedures" and entry.get("role") == "demo-stand-in" and entry.get("system") == CPT
    }
    return sorted(found)


def _demo_mapping_note(codesets: CodeSets) -> str:
    codes = "; ".join(f"{code} {display}" for code, display in demo_stand_in_codes(codesets))
    return (
        " Sandbox demo mapping is on: a spine imaging order stands in for a vertebral augmentation order "
        f"(CPT {codes}). Cards from such an order are marked as a demo."
    )


def discovery_document(codesets: CodeSets, demo_imaging_stand_in: bool = False) -> dict[str, Any]:
    """The discovery response. With the sandbox demo mapping on, the select service's description lists
    the imaging codes it accepts, so a sandbox user knows which search hit to pick (issue 17)."""
    keys = prefetch_keys(codesets)
    note = _demo_mapping_note(codesets) if demo_imaging_stand_in else ""
    return {
        "services": [
            service.discovery_entry(keys, note if service.hook == "order-select" else "")
            for service in SERVICES
        ],
        "extension": {
            EXTENSION_KEY: {
                "specVersion": SPEC_VERSION,
                "compatibleSpecVersions": list(COMPATIBLE_SPEC_VERSIONS),
            }
        },
    }
