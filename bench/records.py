"""Patient records for the benchmark, and the hook request bodies built from them.

Records come from the Synthea patients in `../shared/fixtures/synthea-r4/` when that folder is present,
and from a built-in generator of realistic records otherwise (`generated_record`): Observations with
LOINC codes of many kinds (vital signs, blood counts, chemistry, coagulation, lipids, pain scores,
smoking status; most of them codes the rules never use), Conditions and MedicationRequests, dated over
years of visits the way Synthea writes them.

A hook body carries every prefetch key of the service (CDS Hooks 2.0 §Prefetch). Each key holds what a
FHIR server answers for its template, except `observations`, which holds *every* Observation of the
record, as if the EHR ignored the code filter: the worst case, and the one the figures are about.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from cds_service.hooks.discovery import PrefetchKey, imaging_procedure_codes, prefetch_keys
from fhir_mappings.codesets import default_codesets

JsonObject = dict[str, Any]

TYPICAL_SYNTHEA_PATIENT = "Hallie_Hoeger"
"""Osteoporosis and an active warfarin order: the patient this product is for."""
TYPICAL_OBSERVATIONS = 100
ORDER_ID = "bench-order-1"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
_ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
_ACTIVE_MEDICATION_REQUEST = frozenset({"active", "on-hold", "draft"})
_ACTIVE_MEDICATION_STATEMENT = frozenset({"active", "intended"})
_URN_REFERENCE = re.compile(rb'"reference":\s*"(urn:uuid:[0-9a-fA-F-]+)"')


@dataclass
class Record:
    """One patient's resources by type (the Patient itself apart)."""

    name: str
    patient: JsonObject
    resources: dict[str, list[JsonObject]] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return str(self.patient["id"])

    @property
    def observations(self) -> list[JsonObject]:
        return self.resources.get("Observation", [])

    def of(self, *types: str) -> list[JsonObject]:
        return [r for t in types for r in self.resources.get(t, [])]

    def with_observations(self, observations: list[JsonObject], name: str) -> Record:
        return Record(
            name=name, patient=self.patient, resources={**self.resources, "Observation": observations}
        )


# --------------------------------------------------------------------------- Synthea


def _relative_references(raw: bytes) -> bytes:
    """A Synthea transaction Bundle refers by `urn:uuid:`; a FHIR server answers `Type/id`."""
    full_urls: dict[bytes, bytes] = {}
    for entry in orjson.loads(raw).get("entry", []):
        resource = entry.get("resource") or {}
        if entry.get("fullUrl") and resource.get("id"):
            full_urls[entry["fullUrl"].encode()] = f"{resource['resourceType']}/{resource['id']}".encode()

    def replace(match: re.Match[bytes]) -> bytes:
        target = full_urls.get(match.group(1))
        return b'"reference":"' + target + b'"' if target else match.group(0)

    return _URN_REFERENCE.sub(replace, raw)


def load_synthea_record(path: Path) -> Record:
    bundle = orjson.loads(_relative_references(path.read_bytes()))
    by_type: dict[str, list[JsonObject]] = {}
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if isinstance(resource, dict):
            by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    patient = by_type.pop("Patient")[0]
    return Record(
        name=path.name.split("_")[0] + "_" + path.name.split("_")[1], patient=patient, resources=by_type
    )


def synthea_records(folder: Path) -> list[Record]:
    """Every Synthea patient in the folder, largest (most Observations) first."""
    records = [load_synthea_record(path) for path in sorted(folder.glob("*.json"))]
    return sorted(records, key=lambda r: len(r.observations), reverse=True)


def _effective(resource: JsonObject) -> str:
    value = resource.get("effectiveDateTime") or resource.get("issued") or ""
    return str(value)


def newest_observations(record: Record, count: int, name: str) -> Record:
    """The record cut to its `count` most recent Observations (a typical record)."""
    newest = sorted(record.observations, key=_effective, reverse=True)[:count]
    return record.with_observations(newest, name)


def merged_record(records: list[Record], count: int) -> Record:
    """The first record with Observations from all records added, up to `count`.

    Observations of the other patients are re-pointed at the first patient; when all are used once,
    they are used again with new ids (a record never holds the same resource twice).
    """
    base = records[0]
    subject = {"reference": f"Patient/{base.patient_id}"}
    pool = [(r is base, o) for r in records for o in r.observations]
    merged: list[JsonObject] = []
    for round_number in itertools.count():
        for own, observation in pool:
            if len(merged) == count:
                return base.with_observations(merged, f"merged {count}")
            if own and round_number == 0:
                merged.append(observation)
            else:
                suffix = f"-m{round_number}" if round_number else ""
                merged.append({**observation, "id": f"{observation['id']}{suffix}", "subject": subject})
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- the generator

# (LOINC code, display, unit, typical value, spread); the rules use only a few of these codes.
_VITALS = (
    ("8302-2", "Body Height", "cm", 162.0, 0.5),
    ("29463-7", "Body Weight", "kg", 71.0, 3.0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 27.0, 1.0),
    ("8867-4", "Heart rate", "/min", 74.0, 9.0),
    ("9279-1", "Respiratory rate", "/min", 15.0, 2.0),
    ("8310-5", "Body temperature", "Cel", 36.8, 0.3),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 95.0, 2.0),
    ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 4.0, 2.5),
)
_PANELS = (
    (
        "58410-2",
        "Complete blood count (hemogram) panel - Blood by Automated count",
        (
            ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 7.2, 1.5),
            ("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.5, 0.4),
            ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.4, 1.0),
            ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 40.0, 3.0),
            ("787-2", "MCV [Entitic volume] by Automated count", "fL", 90.0, 4.0),
            ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 240.0, 60.0),
        ),
    ),
    (
        "51990-0",
        "Basic metabolic panel - Blood",
        (
            ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 98.0, 15.0),
            ("6299-2", "Urea nitrogen [Mass/volume] in Blood", "mg/dL", 16.0, 4.0),
            ("38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL", 1.1, 0.2),
            ("49765-1", "Calcium [Mass/volume] in Blood", "mg/dL", 9.4, 0.4),
            ("2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 140.0, 2.0),
            ("6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 4.3, 0.3),
            ("2069-3", "Chloride [Moles/volume] in Blood", "mmol/L", 104.0, 2.0),
            ("20565-8", "Carbon dioxide, total [Moles/volume] in Blood", "mmol/L", 25.0, 2.0),
            ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", 58.0, 12.0),
        ),
    ),
    (
        "57698-3",
        "Lipid panel with direct LDL - Serum or Plasma",
        (
            ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 190.0, 25.0),
            ("2571-8", "Triglycerides", "mg/dL", 130.0, 30.0),
            (
                "18262-6",
                "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
                "mg/dL",
                110.0,
                20.0,
            ),
            ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 55.0, 10.0),
        ),
    ),
    (
        "34528-0",
        "PT panel - Platelet poor plasma by Coagulation assay",
        (
            ("5902-2", "Prothrombin time (PT)", "s", 24.0, 4.0),
            ("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 2.4, 0.4),
        ),
    ),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", (("4548-4", "Hemoglobin A1c", "%", 6.1, 0.4),)),
)
_CONDITIONS = (
    ("64859006", "Osteoporosis (disorder)", "active"),
    ("59621000", "Essential hypertension (disorder)", "active"),
    ("55822004", "Hyperlipidemia (disorder)", "active"),
    ("49436004", "Atrial fibrillation (disorder)", "active"),
    ("44054006", "Diabetes mellitus type 2 (disorder)", "active"),
    ("433144002", "Chronic kidney disease stage 3 (disorder)", "active"),
    ("239873007", "Osteoarthritis of knee (disorder)", "active"),
    ("271737000", "Anemia (disorder)", "resolved"),
    ("444814009", "Viral sinusitis (disorder)", "resolved"),
    ("10509002", "Acute bronchitis (disorder)", "resolved"),
    ("162864005", "Body mass index 30+ - obesity (finding)", "active"),
    ("15777000", "Prediabetes (finding)", "resolved"),
)
_MEDICATIONS = (
    ("855332", "Warfarin Sodium 5 MG Oral Tablet", "active"),
    ("904419", "Alendronic acid 10 MG Oral Tablet", "active"),
    ("314076", "lisinopril 10 MG Oral Tablet", "active"),
    ("259255", "atorvastatin 80 MG Oral Tablet", "active"),
    ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "active"),
    ("313782", "Acetaminophen 325 MG Oral Tablet", "active"),
    ("197361", "Amlodipine 5 MG Oral Tablet", "stopped"),
    ("310965", "Ibuprofen 200 MG Oral Tablet", "stopped"),
    ("1049221", "Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet", "stopped"),
    ("309362", "Clopidogrel 75 MG Oral Tablet", "stopped"),
    ("198405", "Ibuprofen 100 MG Oral Tablet", "stopped"),
    ("895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "stopped"),
)
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _observation(
    rng: random.Random, patient: str, encounter: str, when: datetime, category: str, code: str, display: str
) -> JsonObject:
    instant = when.isoformat()
    return {
        "resourceType": "Observation",
        "id": _uuid(rng),
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"]},
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": category, "display": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "effectiveDateTime": instant,
        "issued": instant[:19] + ".482-05:00",
    }


def _quantity(rng: random.Random, unit: str, typical: float, spread: float) -> JsonObject:
    value = round(max(0.0, rng.gauss(typical, spread)), 1 if typical < 100 else 0)
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _visit(rng: random.Random, patient: str, when: datetime, visit: int) -> Iterator[JsonObject]:
    encounter = _uuid(rng)
    for code, display, unit, typical, spread in _VITALS:
        observation = _observation(rng, patient, encounter, when, "vital-signs", code, display)
        observation["valueQuantity"] = _quantity(rng, unit, typical, spread)
        yield observation
    pressure = _observation(rng, patient, encounter, when, "vital-signs", "85354-9", "Blood pressure panel")
    pressure["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
            "valueQuantity": _quantity(rng, "mm[Hg]", typical, 10.0),
        }
        for code, name, typical in (
            ("8462-4", "Diastolic Blood Pressure", 80.0),
            ("8480-6", "Systolic Blood Pressure", 132.0),
        )
    ]
    yield pressure
    smoking = _observation(rng, patient, encounter, when, "survey", "72166-2", "Tobacco smoking status")
    smoking["valueCodeableConcept"] = {
        "coding": [{"system": SNOMED, "code": "8517006", "display": "Ex-smoker (finding)"}],
        "text": "Ex-smoker (finding)",
    }
    yield smoking
    for index, (_, _, members) in enumerate(_PANELS):
        if (visit + index) % (index + 2):
            continue
        for code, display, unit, typical, spread in members:
            observation = _observation(
                rng, patient, encounter, when + timedelta(minutes=20), "laboratory", code, display
            )
            observation["valueQuantity"] = _quantity(rng, unit, typical, spread)
            yield observation


def generated_record(observations: int, seed: int = 20261121, name: str | None = None) -> Record:
    """A made-up elderly patient with osteoporosis, atrial fibrillation on warfarin and many visits: the
    newest visit is a week ago, the others every five weeks before it."""
    rng = random.Random(seed)
    patient_id = _uuid(rng)
    patient: JsonObject = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"use": "official", "family": "Generated", "given": ["Bench"], "prefix": ["Mrs."]}],
        "gender": "female",
        "birthDate": "1944-03-08",
        "address": [{"line": ["1 Example Street"], "city": "Boston", "state": "MA", "country": "US"}],
    }
    now = datetime.now(UTC).replace(microsecond=0)
    found: list[JsonObject] = []
    for visit in itertools.count():
        when = now - timedelta(days=7 + 35 * visit, hours=rng.randint(0, 6))
        found.extend(_visit(rng, patient_id, when, visit))
        if len(found) >= observations:
            break
    subject = {"reference": f"Patient/{patient_id}"}
    conditions = [
        {
            "resourceType": "Condition",
            "id": _uuid(rng),
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
            "subject": subject,
            "onsetDateTime": (now - timedelta(days=400 + 211 * i)).isoformat(),
            "recordedDate": (now - timedelta(days=400 + 211 * i)).isoformat(),
        }
        for i, (code, display, status) in enumerate(_CONDITIONS)
    ]
    medications = [
        {
            "resourceType": "MedicationRequest",
            "id": _uuid(rng),
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": code, "display": display}],
                "text": display,
            },
            "subject": subject,
            "authoredOn": (now - timedelta(days=90 + 97 * i)).isoformat(),
            "requester": {"reference": "Practitioner/bench-prescriber", "display": "Dr. Example"},
            "dosageInstruction": [{"sequence": 1, "text": "Take as directed", "asNeededBoolean": False}],
        }
        for i, (code, display, status) in enumerate(_MEDICATIONS)
    ]
    return Record(
        name=name or f"generated {observations}",
        patient=patient,
        resources={
            "Observation": found[:observations],
            "Condition": conditions,
            "MedicationRequest": medications,
        },
    )


# --------------------------------------------------------------------------- record sets


@dataclass(frozen=True)
class RecordSet:
    """The records the benchmark measures, and where they came from."""

    source: str
    typical: Record
    largest: Record
    merged: dict[int, Record]
    """Observation count → record (1,000, 5,000, 10,000)."""


def record_set(synthea_folder: Path | None, merged_sizes: Iterable[int]) -> RecordSet:
    sizes = sorted(set(merged_sizes))
    if synthea_folder is not None and any(synthea_folder.glob("*.json")):
        records = synthea_records(synthea_folder)
        typical_base = next((r for r in records if r.name.startswith(TYPICAL_SYNTHEA_PATIENT)), records[-1])
        typical = newest_observations(
            typical_base, TYPICAL_OBSERVATIONS, f"{typical_base.name}, newest {TYPICAL_OBSERVATIONS}"
        )
        largest = records[0]
        merged = {n: merged_record(records, n) for n in sizes}
        return RecordSet(f"Synthea ({synthea_folder})", typical, largest, merged)
    largest = generated_record(869, name="generated 869")
    return RecordSet(
        "built-in generator (shared Synthea fixtures absent)",
        generated_record(TYPICAL_OBSERVATIONS),
        largest,
        {n: generated_record(n) for n in sizes},
    )


# --------------------------------------------------------------------------- hook bodies


def augmentation_order(patient_id: str) -> JsonObject:
    """A draft kyphoplasty of T11-L1 (three levels) two weeks from today."""
    planned = (date.today() + timedelta(days=14)).isoformat()
    levels = (("12989004", "T11"), ("23215003", "T12"), ("66794005", "L1"))
    return {
        "resourceType": "ServiceRequest",
        "id": ORDER_ID,
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [
                {"system": CPT, "code": "22513", "display": "Percutaneous vertebral augmentation, thoracic"}
            ],
            "text": "Kyphoplasty",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "bodySite": [
            {"coding": [{"system": SNOMED, "code": code, "display": name}]} for code, name in levels
        ],
        "occurrenceDateTime": planned,
    }


def _codes(concept: object) -> set[tuple[str, str]]:
    if not isinstance(concept, dict):
        return set()
    return {
        (str(c.get("system")), str(c.get("code"))) for c in concept.get("coding") or [] if isinstance(c, dict)
    }


def _status_code(concept: object) -> str | None:
    codes = _codes(concept)
    return next(iter(codes))[1] if codes else None


def _answer(key: PrefetchKey, record: Record) -> list[JsonObject]:
    """What a FHIR server answers for the key's template, except `observations` (all of them)."""
    if key.key == "patient":
        return [record.patient]
    if key.key == "conditions":
        return [
            r for r in record.of("Condition") if _status_code(r.get("clinicalStatus")) in _ACTIVE_CONDITION
        ]
    if key.key == "observations":
        return record.observations
    if key.key == "medicationRequests":
        return [r for r in record.of("MedicationRequest") if r.get("status") in _ACTIVE_MEDICATION_REQUEST]
    if key.key == "medicationStatements":
        return [
            r for r in record.of("MedicationStatement") if r.get("status") in _ACTIVE_MEDICATION_STATEMENT
        ]
    if key.key == "imagingReports":
        wanted = {(LOINC, "LP29684-5")}
        return [
            r
            for r in record.of("DiagnosticReport")
            if any(_codes(c) & wanted for c in r.get("category") or [])
        ]
    if key.key == "imagingProcedures":
        imaging = {tuple(token.split("|", 1)) for token in imaging_procedure_codes(default_codesets())}
        return [r for r in record.of("Procedure") if _codes(r.get("code")) & imaging]
    return record.of(*sorted(key.resource_types))


def searchset(resources: list[JsonObject], base: str = "https://ehr.example.org/fhir") -> JsonObject:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"{base}/{r.get('resourceType')}/{r.get('id')}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def hook_body(record: Record, *, prefetch: bool = True, fhir_server: str | None = None) -> JsonObject:
    """An order-select call selecting a draft kyphoplasty for the record's patient."""
    body: JsonObject = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-select",
        "context": {
            "userId": "Practitioner/bench-user",
            "patientId": record.patient_id,
            "selections": [f"ServiceRequest/{ORDER_ID}"],
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": augmentation_order(record.patient_id)}],
            },
        },
    }
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if prefetch:
        values: JsonObject = {}
        for key in prefetch_keys(default_codesets()):
            if key.needs_encounter:
                continue
            answer = _answer(key, record)
            values[key.key] = answer[0] if key.key == "patient" else searchset(answer)
        body["prefetch"] = values
    return body


def hook_body_bytes(record: Record) -> bytes:
    return orjson.dumps(hook_body(record))
