"""Builders of CDS Hooks request bodies for tests: a draft augmentation order, the hook call, the token."""

from __future__ import annotations

import uuid
from typing import Any

CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"

KYPHOPLASTY_THORACIC = "22513"
"""CPT: percutaneous vertebral augmentation including cavity creation, thoracic."""

LEVELS: dict[str, str] = {
    "T11": "12989004",
    "T12": "23215003",
    "L1": "66794005",
}
"""SNOMED body-site codes of the vertebrae used in test orders."""


def augmentation_order(
    order_id: str,
    patient_id: str,
    levels: tuple[str, ...] = ("T11", "T12", "L1"),
    *,
    cpt: str = KYPHOPLASTY_THORACIC,
    planned: str | None = "2026-12-01",
) -> dict[str, Any]:
    """A draft ServiceRequest for vertebral augmentation at the given levels."""
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [{"system": CPT, "code": cpt, "display": "Percutaneous vertebral augmentation"}],
            "text": "Kyphoplasty",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "bodySite": [
            {"coding": [{"system": SNOMED, "code": LEVELS[name], "display": name}]} for name in levels
        ],
    }
    if planned is not None:
        order["occurrenceDateTime"] = planned
    return order


def draft_orders(*orders: dict[str, Any]) -> dict[str, Any]:
    """The `context.draftOrders` Bundle."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders]}


def fhir_authorization(access_token: str, *, subject: str = "vertebral-cds") -> dict[str, Any]:
    """A CDS Hooks 2.0 `fhirAuthorization` object (bearer token, integer expires_in)."""
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": subject,
    }


def order_select(
    patient_id: str,
    order: dict[str, Any],
    *,
    fhir_server: str | None = None,
    access_token: str | None = None,
    prefetch: dict[str, Any] | None = None,
    user_id: str = "Practitioner/itest-user",
    hook_instance: str | None = None,
) -> dict[str, Any]:
    """An order-select call selecting `order`; fhirServer, fhirAuthorization and prefetch only when given."""
    body: dict[str, Any] = {
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "hook": "order-select",
        "context": {
            "userId": user_id,
            "patientId": patient_id,
            "selections": [f"ServiceRequest/{order['id']}"],
            "draftOrders": draft_orders(order),
        },
    }
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if access_token is not None:
        body["fhirAuthorization"] = fhir_authorization(access_token)
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def active_condition(
    condition_id: str, patient_id: str, code: str, *, system: str = ICD10CM, display: str = ""
) -> dict[str, Any]:
    """An active Condition for `patient_id` (e.g. COPD: ICD-10-CM J44.9 or SNOMED 13645005)."""
    return {
        "resourceType": "Condition",
        "id": condition_id,
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "code": {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "onsetDateTime": "2015-03-01",
    }


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle holding `resources` on one page (no `next` link)."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }
