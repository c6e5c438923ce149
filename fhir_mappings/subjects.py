"""Whose data is it: every resource used must belong to the patient of the call (`context.patientId`).

References to the patient come as `Patient/123`, an absolute URL `https://ehr/fhir/Patient/123`,
a versioned `Patient/123/_history/2` or `urn:uuid:…`; all resolve to the id they name. A resource that
names another patient is set aside (its type is counted for the card, never its ids); a resource that
names no patient is kept, since a search by patient returned it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fhir_mappings.json_access import JsonObject, obj, parse_date, reference_of, text
from rules.facts import Evidence

_SUBJECT_FIELDS = ("subject", "patient")


def referenced_id(reference: str) -> str | None:
    """The patient id a reference names, or None when it names something other than a Patient."""
    value = reference.strip()
    if value.startswith(("urn:uuid:", "urn:oid:")):
        return value.rsplit(":", 1)[-1]
    parts = [p for p in value.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1]
    return None


def _same(found: str, patient_id: str) -> bool:
    wanted = referenced_id(patient_id) if "/" in patient_id or patient_id.startswith("urn:") else patient_id
    return found == (wanted or patient_id)


def belongs_to(resource: JsonObject, patient_id: str) -> bool:
    """False only when the resource names a patient and it is not `patient_id`."""
    if resource.get("resourceType") == "Patient":
        rid = text(resource.get("id"))
        return rid is None or _same(rid, patient_id)
    for name in _SUBJECT_FIELDS:
        reference = text(obj(resource.get(name)).get("reference"))
        if reference is None:
            continue
        found = referenced_id(reference)
        if found is not None:
            return _same(found, patient_id)
    return True


def split_by_patient(
    resources: Mapping[str, Iterable[JsonObject]], patient_id: str | None
) -> tuple[dict[str, list[JsonObject]], list[str]]:
    """The resources of `patient_id` by type, and the type of each resource of another patient."""
    own: dict[str, list[JsonObject]] = {}
    others: list[str] = []
    for resource_type, items in resources.items():
        kept = own.setdefault(resource_type, [])
        for resource in items:
            if patient_id is None or belongs_to(resource, patient_id):
                kept.append(resource)
            else:
                others.append(text(resource.get("resourceType")) or resource_type)
    return own, others


def deceased_evidence(patient: JsonObject) -> Evidence | None:
    """Evidence of a recorded death: deceasedBoolean true, or a deceasedDateTime."""
    when = parse_date(patient.get("deceasedDateTime"))
    if when is None and patient.get("deceasedBoolean") is not True:
        return None
    display = f"Patient recorded as deceased{f' on {when.isoformat()}' if when else ''}"
    return Evidence(reference=reference_of(patient), display=display, recorded=when)
