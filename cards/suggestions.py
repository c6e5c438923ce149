"""Suggestions: real FHIR R4 resources the EHR can apply (orders, consults, a staged order).

Codes: LOINC 6301-6 INR and 777-3 platelets (clinical-rules.md §3, P); CPT 72146/72148 MRI spine
without contrast (V) and 77080 DXA (U); ServiceRequest.category from the R4 example value set
(108252007 laboratory procedure, 363679005 imaging, 3457005 patient referral).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cards.models import Action, Suggestion
from rules.findings import Finding

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"

StagingActions = Callable[[int], tuple[Action, ...]]
"""Given a level limit, the actions that cut the selected draft order down to it (built at the edge)."""


@dataclass(frozen=True)
class OrderContext:
    """What a suggested resource needs to belong to this patient and clinician."""

    patient_id: str
    user_reference: str
    region: str | None
    staging: StagingActions | None = None


@dataclass(frozen=True)
class _Order:
    label: str
    category: tuple[str, str]
    code: dict[str, Any]


_CATEGORIES = {
    "lab": ("108252007", "Laboratory procedure"),
    "imaging": ("363679005", "Imaging"),
    "referral": ("3457005", "Patient referral"),
}


def _coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


INR = _Order(
    "INR", _CATEGORIES["lab"], _coded(LOINC, "6301-6", "INR in Platelet poor plasma by Coagulation assay")
)
PLATELETS = _Order(
    "platelet count",
    _CATEGORIES["lab"],
    _coded(LOINC, "777-3", "Platelets [#/volume] in Blood by Automated count"),
)
MRI_THORACIC = _Order(
    "MRI thoracic spine without contrast",
    _CATEGORIES["imaging"],
    _coded(CPT, "72146", "MRI spinal canal and contents, thoracic; without contrast material"),
)
MRI_LUMBAR = _Order(
    "MRI lumbar spine without contrast",
    _CATEGORIES["imaging"],
    _coded(CPT, "72148", "MRI spinal canal and contents, lumbar; without contrast material"),
)
DXA = _Order(
    "DXA bone density",
    _CATEGORIES["imaging"],
    _coded(CPT, "77080", "Dual-energy X-ray absorptiometry (DXA), bone density study, axial skeleton"),
)


def _consult(specialty: str) -> _Order:
    return _Order(f"{specialty} consultation", _CATEGORIES["referral"], {"text": f"{specialty} consultation"})


def service_request(order: _Order, ctx: OrderContext, reason: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "category": [
            {"coding": [{"system": SNOMED, "code": order.category[0], "display": order.category[1]}]}
        ],
        "code": order.code,
        "subject": {"reference": f"Patient/{ctx.patient_id}"},
        "reasonCode": [{"text": reason}],
    }
    if ctx.user_reference.startswith(("Practitioner/", "PractitionerRole/")):
        resource["requester"] = {"reference": ctx.user_reference}
    return resource


def _create(
    label: str, orders: tuple[_Order, ...], ctx: OrderContext, reason: str, recommended: bool
) -> Suggestion:
    return Suggestion(
        label=label,
        is_recommended=recommended,
        actions=tuple(
            Action(type="create", description=f"Order {o.label}", resource=service_request(o, ctx, reason))
            for o in orders
        ),
    )


def _mri_for(region: str | None) -> tuple[_Order, ...]:
    if region == "thoracic":
        return (MRI_THORACIC,)
    if region in ("lumbar", "lumbosacral"):
        return (MRI_LUMBAR,)
    return (MRI_THORACIC, MRI_LUMBAR)


def _staging(finding: Finding, ctx: OrderContext, limit: int, why: str) -> list[Suggestion]:
    if ctx.staging is None:
        return []
    actions = ctx.staging(limit)
    if not actions:
        return []
    return [
        Suggestion(
            label=f"Stage: treat {limit} level{'s' if limit != 1 else ''} now ({why})",
            is_recommended=True,
            actions=actions,
        )
    ]


def suggestions_for(finding: Finding, ctx: OrderContext) -> list[Suggestion]:
    """The suggestions that fit one finding; an empty list when there is nothing to apply."""
    rule = finding.rule
    reason = f"Before vertebral augmentation ({rule})"
    if rule == "coagulation-labs-missing":
        wanted = tuple(
            o
            for o, key in ((INR, "missing_inr"), (PLATELETS, "missing_platelets"))
            if finding.values.get(key)
        )
        return [
            _create(f"Order {' and '.join(o.label for o in wanted)}", wanted, ctx, reason, recommended=True)
        ]
    if rule == "anticoagulant-active":
        review = _create(
            "Anticoagulation clinic review", (_consult("Anticoagulation clinic"),), ctx, reason, False
        )
        if finding.values.get("on_vka"):  # INR on the day is what matters for a VKA; a DOAC needs time only
            return [_create("Order INR for the day of the procedure", (INR,), ctx, reason, True), review]
        return [review.model_copy(update={"is_recommended": True})]
    if rule == "inr-high":
        return [_create("Recheck INR", (INR,), ctx, reason, recommended=True)]
    if rule in ("platelets-low", "bleeding-disorder"):
        return [_create("Hematology consultation", (_consult("Hematology"),), ctx, reason, recommended=True)]
    if rule == "antiplatelet-active" and not finding.values.get("aspirin_only"):
        if finding.values.get("combined"):
            return []  # the combined-antithrombotic card offers the cardiology review of the whole plan
        return [
            _create("Cardiology review of antiplatelet hold", (_consult("Cardiology"),), ctx, reason, True)
        ]
    if rule == "multiple-antithrombotics":
        return [
            _create(
                "Cardiology review of the antithrombotic plan", (_consult("Cardiology"),), ctx, reason, True
            )
        ]
    if rule in ("spinal-infection", "systemic-infection"):
        return [
            _create("Infectious disease consultation", (_consult("Infectious disease"),), ctx, reason, True)
        ]
    if rule == "neurologic-compromise":
        return [_create("Spine surgery consultation", (_consult("Spine surgery"),), ctx, reason, True)]
    if rule == "copd-multilevel":
        limit = int(finding.thresholds_used["max_levels_severe_lung"] or 1)
        return [
            *_staging(finding, ctx, limit, "lung limit"),
            _create(
                "Pulmonology and anesthesia review",
                (_consult("Pulmonology"), _consult("Anesthesia")),
                ctx,
                reason,
                recommended=False,
            ),
        ]
    if rule == "too-many-levels":
        return _staging(
            finding, ctx, int(finding.thresholds_used["max_levels_per_session"] or 1), "session limit"
        )
    if rule == "eligibility":
        imaging = next((c for c in finding.criteria if c.criterion == "imaging"), None)
        if imaging is not None and imaging.outcome != "met":
            return [_create("Order MRI of the spine (STIR/T2)", _mri_for(ctx.region), ctx, reason, True)]
        return []
    if rule == "osteoporosis-follow-up" and finding.values.get("missing_dxa"):
        return [
            _create(
                "Order DXA bone density", (DXA,), ctx, "Osteoporosis follow-up after vertebral fracture", True
            )
        ]
    if rule == "neoplastic-indication":
        return [_create("Oncology consultation", (_consult("Oncology"),), ctx, reason, recommended=True)]
    return []
