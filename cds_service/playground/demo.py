"""Demo patients, and the hook request an EHR would send for a FHIR Bundle plus an order.

Used by the playground page and the command line (`vertebral-cds evaluate`, `vertebral-cds demo`):

- the demo patients are small hand-written FHIR R4 Bundles in `demo_patients/`, one story each, with
  dates written for `DEMO_ANCHOR` (2026-11-21); `rebased()` moves every date by the days since then,
  so "INR two days ago" stays two days ago whenever the demo runs;
- `read_bundle()` takes any Bundle (collection, searchset, or a Synthea transaction whose references
  are `urn:uuid:` fullUrls) and gives the Patient plus the other resources, references rewritten to
  `Type/id` the way a FHIR server stores a transaction;
- `augmentation_order()` writes the draft ServiceRequest (CPT by procedure and region, one SNOMED
  bodySite per vertebra, the planned date), and `hook_request()` the whole order-select or order-sign
  call, every discovery prefetch key filled from the bundle, so the service fetches nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from cds_service.hooks.discovery import CPT, SNOMED, PrefetchKey
from fhir_mappings.codesets import CodeSets
from fhir_mappings.draft_orders import levels_in_text

JsonObject = dict[str, Any]
Procedure = Literal["vertebroplasty", "kyphoplasty"]
PROCEDURES: tuple[Procedure, ...] = ("vertebroplasty", "kyphoplasty")
HOOKS = ("order-select", "order-sign")

DEMO_DIR = Path(__file__).parent / "demo_patients"
DEMO_ANCHOR = date(2026, 11, 21)
"""The day the demo bundles' dates were written for."""
DEMO_USER = "Practitioner/playground-clinician"
ORDER_ID = "va-order-1"

_SEGMENTS = (("C", 7), ("T", 12), ("L", 5), ("S", 5))
SPINE_LEVELS: tuple[str, ...] = tuple(f"{s}{n}" for s, count in _SEGMENTS for n in range(1, count + 1))
# CPT 2026: vertebroplasty codes are cervicothoracic / lumbosacral, kyphoplasty codes thoracic / lumbar.
_CPT_BY_PROCEDURE_AND_SEGMENT: dict[tuple[Procedure, str], str] = {
    ("vertebroplasty", "C"): "22510",
    ("vertebroplasty", "T"): "22510",
    ("vertebroplasty", "L"): "22511",
    ("vertebroplasty", "S"): "22511",
    ("kyphoplasty", "T"): "22513",
    ("kyphoplasty", "L"): "22514",
}
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)?$")
_LEVEL_NAME = re.compile(r"\b([CTLS])\s?(\d{1,2})\b", re.IGNORECASE)


class DemoError(ValueError):
    """Input the demo cannot use; the message says what to change."""


# --------------------------------------------------------------------------- the order


def parse_levels(words: str | Sequence[str]) -> tuple[str, ...]:
    """Vertebrae named as `T12, L1`, `T11-L1` or a list of names; sorted head to tail, no repeats."""
    joined = words if isinstance(words, str) else ", ".join(words)
    for segment, number in _LEVEL_NAME.findall(joined):
        if f"{segment.upper()}{int(number)}" not in SPINE_LEVELS:
            raise DemoError(f"{segment.upper()}{number} is not a vertebra (C1-C7, T1-T12, L1-L5, S1-S5)")
    found = set(levels_in_text(joined))
    if not found:
        raise DemoError(f"no vertebral level in {joined!r}: name levels such as T12, L1 or a range T11-L1")
    return tuple(level for level in SPINE_LEVELS if level in found)


def parse_planned_date(value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as error:
        raise DemoError(f"planned date {value!r} is not a date such as 2026-12-05") from error


@dataclass(frozen=True)
class OrderSpec:
    """What a clinician picks: the procedure, the vertebrae and the planned date."""

    procedure: Procedure
    levels: tuple[str, ...]
    planned: date | None = None
    order_id: str = ORDER_ID

    def __post_init__(self) -> None:
        if self.procedure not in PROCEDURES:
            raise DemoError(f"procedure must be vertebroplasty or kyphoplasty, not {self.procedure!r}")
        if not self.levels:
            raise DemoError("name at least one vertebral level")
        first = self.levels[0][0]
        if (self.procedure, first) not in _CPT_BY_PROCEDURE_AND_SEGMENT:
            raise DemoError(
                f"kyphoplasty CPT codes cover thoracic and lumbar levels only, not {self.levels[0]}"
            )

    @property
    def cpt(self) -> str:
        """The primary code, chosen by the most cranial level's region."""
        return _CPT_BY_PROCEDURE_AND_SEGMENT[(self.procedure, self.levels[0][0])]

    @property
    def label(self) -> str:
        return f"{self.procedure.capitalize()} {', '.join(self.levels)}"


@cache
def _vertebra_codes(codesets: CodeSets) -> dict[str, tuple[str, str]]:
    """Level → (SNOMED code, display) from the vertebrae code set."""
    found: dict[str, tuple[str, str]] = {}
    for name, entry in codesets.entries():
        if name == "vertebrae" and entry.get("system") == SNOMED:
            found.setdefault(str(entry["level"]), (str(entry["code"]), str(entry["display"])))
    return found


def _procedure_display(codesets: CodeSets, cpt: str) -> str:
    for name, entry in codesets.entries():
        if name == "procedures" and entry.get("system") == CPT and entry.get("code") == cpt:
            return str(entry["display"])
    return cpt


def augmentation_order(
    spec: OrderSpec, patient_id: str, codesets: CodeSets, requester: str = DEMO_USER
) -> JsonObject:
    """The draft ServiceRequest: CPT code, a SNOMED bodySite per vertebra (text where none is known)."""
    snomed = _vertebra_codes(codesets)
    sites: list[JsonObject] = []
    for level in spec.levels:
        if level in snomed:
            code, display = snomed[level]
            sites.append({"coding": [{"system": SNOMED, "code": code, "display": display}]})
        else:
            sites.append({"text": f"{level} vertebra"})
    order: JsonObject = {
        "resourceType": "ServiceRequest",
        "id": spec.order_id,
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [{"system": CPT, "code": spec.cpt, "display": _procedure_display(codesets, spec.cpt)}],
            "text": spec.label,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "requester": {"reference": requester},
        "bodySite": sites,
    }
    if spec.planned is not None:
        order["occurrenceDateTime"] = spec.planned.isoformat()
    return order


# --------------------------------------------------------------------------- the patient's data


@dataclass
class PatientBundle:
    patient: JsonObject
    resources: list[JsonObject]
    skipped: Counter[str] = field(default_factory=Counter)
    """Resource types no prefetch key asks for (claims, immunizations, …), filled by `prefetch`."""

    @property
    def patient_id(self) -> str:
        return str(self.patient["id"])


def _entry_resources(document: object) -> list[tuple[str | None, JsonObject]]:
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        kind = document.get("resourceType") if isinstance(document, dict) else type(document).__name__
        raise DemoError(f"expected a FHIR Bundle, got {kind or 'an object without resourceType'}")
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise DemoError("Bundle.entry must be a list")
    found: list[tuple[str | None, JsonObject]] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            full_url = entry.get("fullUrl")
            found.append((full_url if isinstance(full_url, str) else None, resource))
    return found


def _local_id(full_url: str | None, index: int) -> str:
    if full_url and full_url.startswith("urn:uuid:"):
        return full_url.removeprefix("urn:uuid:")
    if full_url and "/" in full_url:
        return full_url.rstrip("/").rsplit("/", 1)[-1]
    return f"res-{index}"


def _rewrite_references(value: Any, targets: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (
                targets.get(v, v)
                if k == "reference" and isinstance(v, str)
                else _rewrite_references(v, targets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite_references(v, targets) for v in value]
    return value


def read_bundle(document: object) -> PatientBundle:
    """The Patient and the other resources of a Bundle of any type, one patient per bundle."""
    raw = _entry_resources(document)
    targets: dict[str, str] = {}
    resources: list[JsonObject] = []
    for index, (full_url, original) in enumerate(raw):
        resource = dict(original)
        if not isinstance(resource.get("id"), str) or not resource["id"]:
            resource["id"] = _local_id(full_url, index)
        if full_url:
            targets[full_url] = f"{resource['resourceType']}/{resource['id']}"
        resources.append(resource)
    resources = [_rewrite_references(r, targets) for r in resources]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    if len({p["id"] for p in patients}) > 1:
        raise DemoError(f"the Bundle holds {len(patients)} patients; give one patient's record")
    others = [r for r in resources if r["resourceType"] != "Patient"]
    patient = patients[0] if patients else {"resourceType": "Patient", "id": _subject_id(others)}
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", str(patient["id"])):
        raise DemoError(f"the Patient id {patient['id']!r} is not a FHIR id")
    return PatientBundle(patient=patient, resources=others)


def _subject_id(resources: list[JsonObject]) -> str:
    for resource in resources:
        for name in ("subject", "patient"):
            reference = (
                resource.get(name, {}).get("reference") if isinstance(resource.get(name), dict) else None
            )
            if isinstance(reference, str) and reference.startswith("Patient/"):
                return reference.removeprefix("Patient/")
    return "patient-1"


def _searchset(resources: list[JsonObject]) -> JsonObject:
    bundle: JsonObject = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle


def prefetch(record: PatientBundle, keys: Sequence[PrefetchKey]) -> JsonObject:
    """Every prefetch key filled from the bundle (an empty searchset when it has nothing for a key).

    The encounter key is left out (the call names no encounter). Types no key asks for are counted
    in `record.skipped`.
    """
    search_keys = [k for k in keys if k.key != "patient" and not k.needs_encounter]
    grouped: dict[str, list[JsonObject]] = {k.key: [] for k in search_keys}
    record.skipped.clear()
    for resource in record.resources:
        kind = resource["resourceType"]
        key = next((k.key for k in search_keys if kind in k.resource_types), None)
        if key is None:
            record.skipped[kind] += 1
        else:
            grouped[key].append(resource)
    filled: JsonObject = {"patient": record.patient}
    filled.update({key: _searchset(found) for key, found in grouped.items()})
    return filled


def hook_request(
    record: PatientBundle,
    spec: OrderSpec,
    hook: str,
    keys: Sequence[PrefetchKey],
    codesets: CodeSets,
    *,
    hook_instance: str | None = None,
    user_id: str = DEMO_USER,
) -> JsonObject:
    """The CDS Hooks call an EHR makes when the order is selected (order-select) or signed (order-sign)."""
    if hook not in HOOKS:
        raise DemoError(f"hook must be order-select or order-sign, not {hook!r}")
    order = augmentation_order(spec, record.patient_id, codesets, requester=user_id)
    context: JsonObject = {
        "userId": user_id,
        "patientId": record.patient_id,
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
    }
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{spec.order_id}"]
    return {
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "hook": hook,
        "context": context,
        "prefetch": prefetch(record, keys),
    }


# --------------------------------------------------------------------------- the demo patients


@dataclass(frozen=True)
class DemoPatient:
    id: str
    """The file name in `demo_patients/` without `.json`."""
    title: str
    story: str
    procedure: Procedure
    levels: tuple[str, ...]
    planned_in_days: int
    """The story's order is planned this many days after the day the demo runs."""
    shows: tuple[str, ...]
    """The rule ids of the cards the story's order gives (checked by the tests)."""

    @property
    def path(self) -> Path:
        return DEMO_DIR / f"{self.id}.json"

    def order(self, today: date) -> OrderSpec:
        return OrderSpec(self.procedure, self.levels, today + timedelta(days=self.planned_in_days))

    def bundle(self, today: date | None = None) -> JsonObject:
        """The bundle, its dates moved to `today` (as written when None)."""
        loaded: JsonObject = json.loads(self.path.read_text(encoding="utf-8"))
        return loaded if today is None else rebased(loaded, today)

    def as_json(self, today: date) -> JsonObject:
        planned = today + timedelta(days=self.planned_in_days)
        return {
            "id": self.id,
            "title": self.title,
            "story": self.story,
            "order": {
                "procedure": self.procedure,
                "levels": list(self.levels),
                "planned": planned.isoformat(),
            },
            "shows": list(self.shows),
        }


DEMO_PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(
        id="eligible-l1",
        title="Margaret Ellison, 78: clean, eligible",
        story="Osteoporotic L1 compression fracture 6 weeks ago, MRI with marrow edema, pain 7/10 despite "
        "8 weeks of acetaminophen, normal INR and platelets, DXA and alendronate on record.",
        procedure="kyphoplasty",
        levels=("L1",),
        planned_in_days=14,
        shows=("eligibility",),
    ),
    DemoPatient(
        id="apixaban",
        title="Harold Brennan, 81: on apixaban",
        story="Atrial fibrillation on apixaban 5 mg twice daily, creatinine clearance 58 mL/min; a T12 "
        "fracture 3 weeks old with MRI and pain on record, but no INR, platelet count or DXA.",
        procedure="kyphoplasty",
        levels=("T12",),
        planned_in_days=3,
        shows=("anticoagulant-active", "coagulation-labs-missing", "eligibility", "osteoporosis-follow-up"),
    ),
    DemoPatient(
        id="copd-multilevel",
        title="Dorothy Kaminski, 74: COPD, three levels",
        story="Severe COPD (FEV1/FVC 0.52, home oxygen) with fractures of T11, T12 and L1 on MRI; the "
        "order treats all three in one session.",
        procedure="kyphoplasty",
        levels=("T11", "T12", "L1"),
        planned_in_days=14,
        shows=("copd-multilevel", "eligibility"),
    ),
    DemoPatient(
        id="spinal-infection",
        title="Robert Okafor, 69: spinal infection",
        story="An L2 fracture with lumbar discitis diagnosed 3 weeks ago and a raised CRP: augmentation "
        "is contraindicated until the infection is treated.",
        procedure="vertebroplasty",
        levels=("L2",),
        planned_in_days=10,
        shows=("spinal-infection", "eligibility", "osteoporosis-follow-up"),
    ),
    DemoPatient(
        id="missing-imaging",
        title="Elena Ruiz, 72: no spine imaging",
        story="Osteoporotic L1 fracture diagnosed on an X-ray 3 weeks ago, severe pain despite 5 weeks of "
        "analgesics, but no MRI or CT of the spine on record.",
        procedure="kyphoplasty",
        levels=("L1",),
        planned_in_days=14,
        shows=("eligibility",),
    ),
    DemoPatient(
        id="myeloma",
        title="Walter Lindqvist, 66: multiple myeloma",
        story="Multiple myeloma with a pathological L1 fracture 2 weeks ago, MRI and pain 7/10: "
        "a neoplastic indication that needs oncology coordination.",
        procedure="kyphoplasty",
        levels=("L1",),
        planned_in_days=7,
        shows=("neoplastic-indication", "eligibility"),
    ),
)
DEMO_PATIENTS_BY_ID = {p.id: p for p in DEMO_PATIENTS}


def demo_patient(patient_id: str) -> DemoPatient:
    found = DEMO_PATIENTS_BY_ID.get(patient_id)
    if found is None:
        raise DemoError(f"no demo patient {patient_id!r}; choose one of {', '.join(DEMO_PATIENTS_BY_ID)}")
    return found


def _shift(value: Any, days: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, days) for v in value]
    if isinstance(value, str) and (match := _DATE.match(value)):
        try:
            moved = date.fromisoformat(match.group(1)) + days
        except ValueError:
            return value
        return moved.isoformat() + (match.group(2) or "")
    return value


def rebased(document: JsonObject, today: date, anchor: date = DEMO_ANCHOR) -> JsonObject:
    """The document with every date and dateTime moved by `today - anchor` days."""
    days = timedelta(days=(today - anchor).days)
    if not days:
        return document
    moved: JsonObject = _shift(document, days)
    return moved
