"""FHIR R4 JSON to ClinicalFacts: code sets, the draft-order reader and one mapper per resource type."""
