"""Real data maps without an exception: every Synthea patient and every HL7 R4 example resource.

And on the Synthea patients the anticoagulant rule tells active warfarin from stopped clopidogrel.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import DraftOrderReading, read_draft_order
from fhir_mappings.record import PatientRecord, build_facts
from rules.catalog import evaluate
from rules.facts import ClinicalFacts
from rules.thresholds import DEFAULT_THRESHOLDS
from tests.support.hl7_examples import ensure_examples

AS_OF = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
KYPHOPLASTY = {
    "resourceType": "Bundle",
    "entry": [
        {
            "resource": {
                "resourceType": "ServiceRequest",
                "id": "va1",
                "status": "draft",
                "intent": "order",
                "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "22513"}]},
                "subject": {"reference": "Patient/p"},
                "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "23215003"}]}],
            }
        }
    ],
}
CLINICAL_TYPES = {
    "Patient",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Medication",
    "AllergyIntolerance",
    "DiagnosticReport",
    "ImagingStudy",
    "Procedure",
    "Encounter",
    "ServiceRequest",
}


def synthea_bundles(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


def facts_for(resources: list[dict[str, Any]], draft: dict[str, Any] = KYPHOPLASTY) -> ClinicalFacts:
    record = PatientRecord()
    record.add(resources)
    reading = read_draft_order(draft, ["ServiceRequest/va1"], default_codesets())
    return build_facts(record, reading, AS_OF, default_codesets())


def bundle_resources(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    return [entry["resource"] for entry in bundle["entry"]]


def test_every_synthea_patient_maps_and_evaluates_without_an_exception(synthea_dir: Path) -> None:
    paths = synthea_bundles(synthea_dir)
    assert len(paths) == 10
    for path in paths:
        facts = facts_for(bundle_resources(path))
        evaluation = evaluate(facts, DEFAULT_THRESHOLDS, 1)
        assert "eligibility" in evaluation.rule_ids, path.name
        assert not facts.parse_issues, (path.name, facts.parse_issues[:3])


@pytest.mark.parametrize("prefix", ["Hallie_Hoeger", "Maurice_Bruen", "Gustavo_Olson", "Kendall_Keeling"])
def test_synthea_patients_on_active_warfarin_get_the_anticoagulant_warning(
    synthea_dir: Path, prefix: str
) -> None:
    (path,) = synthea_dir.glob(f"{prefix}_*.json")
    evaluation = evaluate(facts_for(bundle_resources(path)), DEFAULT_THRESHOLDS, 1)
    finding = evaluation.finding("anticoagulant-active")
    assert finding is not None
    assert finding.values["drug"] == "warfarin"
    assert finding.values["hold"] == "5 days"


@pytest.mark.parametrize("prefix", ["Gustavo_Olson", "Maurice_Bruen"])
def test_stopped_clopidogrel_in_synthea_gives_no_antiplatelet_card(synthea_dir: Path, prefix: str) -> None:
    (path,) = synthea_dir.glob(f"{prefix}_*.json")
    resources = bundle_resources(path)
    stopped = [
        r
        for r in resources
        if r["resourceType"] == "MedicationRequest"
        and r["status"] == "stopped"
        and "Clopidogrel" in r["medicationCodeableConcept"]["text"]
    ]
    assert stopped, "the fixture should carry a stopped clopidogrel order"
    rules = evaluate(facts_for(resources), DEFAULT_THRESHOLDS, 1).rule_ids
    assert "antiplatelet-active" not in rules
    assert "anticoagulant-active" in rules  # their warfarin is active

    only_stopped = [
        r for r in resources if "Warfarin" not in json.dumps(r.get("medicationCodeableConcept", {}))
    ]
    rules = evaluate(facts_for(only_stopped), DEFAULT_THRESHOLDS, 1).rule_ids
    assert "anticoagulant-active" not in rules
    assert "antiplatelet-active" not in rules


def test_the_synthea_patient_on_active_clopidogrel_gets_the_antiplatelet_warning(synthea_dir: Path) -> None:
    (path,) = synthea_dir.glob("Chadwick_Von_*.json")
    finding = evaluate(facts_for(bundle_resources(path)), DEFAULT_THRESHOLDS, 1).finding(
        "antiplatelet-active"
    )
    assert finding is not None
    assert finding.indicator == "warning"
    assert "clopidogrel" in str(finding.values["drugs"])


@pytest.fixture(scope="module")
def hl7_examples() -> Iterator[Path]:
    try:
        yield ensure_examples()
    except Exception as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"HL7 R4 examples could not be fetched under CI: {error}")
        pytest.skip(f"HL7 R4 examples unavailable: {error}")


def _clinical_resources(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(folder.rglob("*.json")):
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(resource, dict):
            continue
        if resource.get("resourceType") in CLINICAL_TYPES:
            yield path.name, resource
        if resource.get("resourceType") == "Bundle":
            for entry in resource.get("entry") or []:
                inner = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(inner, dict) and inner.get("resourceType") in CLINICAL_TYPES:
                    yield f"{path.name}#{inner.get('id')}", inner


def test_every_clinical_resource_of_the_hl7_r4_examples_maps_without_an_exception(hl7_examples: Path) -> None:
    resources = list(_clinical_resources(hl7_examples))
    assert len(resources) > 400
    by_type: dict[str, int] = {}
    for name, resource in resources:
        by_type[resource["resourceType"]] = by_type.get(resource["resourceType"], 0) + 1
        try:
            facts_for([resource])
            if resource["resourceType"] == "ServiceRequest":
                read_draft_order(
                    {"resourceType": "Bundle", "entry": [{"resource": resource}]}, None, default_codesets()
                )
        except Exception as error:
            pytest.fail(f"{name}: {type(error).__name__}: {error}")
    assert by_type["Observation"] > 100
    assert by_type["Condition"] > 5


def test_all_hl7_examples_together_evaluate_as_one_record(hl7_examples: Path) -> None:
    resources = [r for _, r in _clinical_resources(hl7_examples)]
    facts = facts_for(resources)
    evaluation = evaluate(facts, DEFAULT_THRESHOLDS, 1)
    assert "eligibility" in evaluation.rule_ids
    assert isinstance(DraftOrderReading, type)
