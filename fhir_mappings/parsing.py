"""Validate one raw resource with the FHIR R4B models; a malformed one becomes a ParseIssue, not an error.

Only resources that already matched a code set reach here, so validation stays cheap.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_mappings.json_access import JsonObject, reference_of
from rules.facts import ParseIssue

EXPECTED_TYPES = frozenset(
    {
        "AllergyIntolerance",
        "Condition",
        "DiagnosticReport",
        "Encounter",
        "ImagingStudy",
        "Medication",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Patient",
        "Procedure",
        "ServiceRequest",
    }
)
"""The resource types a record may hold; anything else is reported, never validated."""
MAX_ID_CHARS = 256
"""Ids are read up to this bound (Epic's unsigned-order ids run to about 216 characters); the R4B models'
own limit is FHIR's 64 (fhir_core's default differs between versions)."""
_LONG_ID = re.compile(rf"^[A-Za-z0-9\-.]{{65,{MAX_ID_CHARS}}}$")
_STAND_IN_ID = "long-id"


def _with_short_ids(resource: JsonObject) -> JsonObject:
    """The resource with ids of 65 to 256 FHIR id characters replaced by a short stand-in, for the models
    alone: the service checks those ids itself, here, and the models check everything else. Patching
    fhir_core's global id limit instead would depend on import order and change it for every other user
    of the library in the process. A copy only where an id is long (the common case costs nothing)."""
    contained = resource.get("contained")
    contained = contained if isinstance(contained, list) else []
    long_id = isinstance(resource.get("id"), str) and bool(_LONG_ID.match(resource["id"]))
    long_contained = any(
        isinstance(c, dict) and isinstance(c.get("id"), str) and _LONG_ID.match(c["id"]) for c in contained
    )
    if not long_id and not long_contained:
        return resource
    copy = {**resource, "id": _STAND_IN_ID} if long_id else dict(resource)
    if long_contained:
        copy["contained"] = [_with_short_ids(c) if isinstance(c, dict) else c for c in contained]
    return copy


@functools.cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)  # fhir.resources' own lookup (imports the module once)


def warm_up() -> None:
    """Import every model at start-up so the first hook call does not pay for it."""
    for resource_type in EXPECTED_TYPES:
        _model(resource_type)


def validation_problem(resource: JsonObject) -> ParseIssue | None:
    """None when the resource is valid R4; otherwise what is wrong with it (no values quoted)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in EXPECTED_TYPES:
        return ParseIssue(
            reference=reference_of(resource), problem=f"unexpected resource type {resource_type!r}"
        )
    try:
        _model(str(resource_type)).model_validate(_with_short_ids(resource))
    except ValidationError as error:
        # Field paths only: values may carry patient data and must not reach logs or storage.
        fields = sorted({".".join(str(p) for p in e["loc"][:3]) for e in error.errors()})[:5]
        return ParseIssue(reference=reference_of(resource), problem=f"invalid FHIR R4 at {', '.join(fields)}")
    except (TypeError, ValueError) as error:
        return ParseIssue(
            reference=reference_of(resource), problem=f"invalid FHIR R4: {type(error).__name__}"
        )
    return None
