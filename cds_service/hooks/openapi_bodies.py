"""JSON Schemas of the hook and feedback request bodies, for the published OpenAPI document.

The routes read and validate bodies themselves (size-capped streaming, orjson, then the pydantic wire
models in `hook_models`), so FastAPI cannot derive these; they are declared with `openapi_extra`.
They describe what the wire models accept, so that generated clients and schema-driven fuzzing
(schemathesis) send bodies that get past the first checks.
"""

from __future__ import annotations

from typing import Any

from fhir_mappings.parsing import MAX_ID_CHARS

_ID_CHARS = f"[A-Za-z0-9\\-.]{{1,{MAX_ID_CHARS}}}"  # Epic's unsigned-order ids exceed FHIR's 64
_FHIR_ID = f"^{_ID_CHARS}$"
_USER_REFERENCE = f"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/{_ID_CHARS}$"
_RELATIVE_REFERENCE = f"^[A-Z][A-Za-z]+/{_ID_CHARS}$"

_RESOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}, "id": {"type": "string", "pattern": _FHIR_ID}},
    "description": "A FHIR R4 resource.",
}
_BUNDLE: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "entry": {
            "type": "array",
            "items": {"type": "object", "properties": {"resource": _RESOURCE}},
        },
    },
    "description": "A FHIR R4 Bundle (`type` may be absent, as the sandbox sends it).",
}

HOOK_REQUEST_SCHEMA: dict[str, Any] = {
    "title": "CDS Hooks 2.0 request (order-select / order-sign)",
    "type": "object",
    "required": ["hook", "hookInstance", "context"],
    "properties": {
        "hook": {"type": "string", "enum": ["order-select", "order-sign"]},
        "hookInstance": {"type": "string", "format": "uuid"},
        "fhirServer": {"type": "string", "format": "uri"},
        "fhirAuthorization": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer", "minimum": 0},
                "scope": {"type": "string"},
                "subject": {"type": "string"},
                "patient": {"type": "string", "pattern": _FHIR_ID},
            },
        },
        "context": {
            "type": "object",
            "required": ["userId", "patientId", "draftOrders"],
            "properties": {
                "userId": {"type": "string", "pattern": _USER_REFERENCE},
                "patientId": {"type": "string", "pattern": _FHIR_ID},
                "encounterId": {"type": "string", "pattern": _FHIR_ID},
                "selections": {"type": "array", "items": {"type": "string", "pattern": _RELATIVE_REFERENCE}},
                "draftOrders": _BUNDLE,
            },
        },
        "prefetch": {
            "type": "object",
            "additionalProperties": {"oneOf": [_RESOURCE, {"type": "null"}]},
            "description": "Prefetch results by key; `null` means the EHR has no such data.",
        },
    },
}

_OVERRIDE_REASON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {
            "type": "object",
            "required": ["code", "system"],
            "properties": {
                "code": {"type": "string", "minLength": 1},
                "system": {"type": "string", "minLength": 1},
                "display": {"type": "string"},
            },
        },
        "userComment": {"type": "string"},
    },
}

FEEDBACK_REQUEST_SCHEMA: dict[str, Any] = {
    "title": "CDS Hooks 2.0 feedback",
    "type": "object",
    "required": ["feedback"],
    "properties": {
        "feedback": {
            "type": "array",
            "minItems": 1,
            "maxItems": 500,
            "items": {
                "type": "object",
                "required": ["card", "outcome", "outcomeTimestamp"],
                "properties": {
                    "card": {"type": "string", "minLength": 1, "maxLength": 128},
                    "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
                    "acceptedSuggestions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"type": "string", "minLength": 1}},
                        },
                    },
                    "overrideReason": _OVERRIDE_REASON,
                    "overrideReasons": {
                        "type": "array",
                        "maxItems": 20,
                        "items": _OVERRIDE_REASON,
                        "description": "Epic's plural form; read like overrideReason (its first coded item).",
                    },
                    "extension": {
                        "type": "object",
                        "description": "Epic's override reason extension: the first Coding in it is read.",
                    },
                    "outcomeTimestamp": {"type": "string", "format": "date-time"},
                },
            },
        }
    },
}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """An `openapi_extra` that declares a required JSON request body with `schema`."""
    content = {"schema": schema}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": content, "application/fhir+json": content},
        }
    }
