"""Hypothesis-made FHIR resources and hook bodies: the mappings never crash, and the endpoint answers
every body with cards or an OperationOutcome (200, 400, 412 or 413), never a 500."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards.render import render_cards
from cards.suggestions import OrderContext
from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from fhir_mappings.record import PatientRecord, build_facts
from rules.catalog import evaluate
from rules.thresholds import DEFAULT_THRESHOLDS
from testing.fhir_server import free_port
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"
CODESETS = default_codesets()
AS_OF = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TYPES = [
    "Condition", "Observation", "MedicationRequest", "MedicationStatement", "Medication",
    "AllergyIntolerance", "DiagnosticReport", "ImagingStudy", "Procedure", "Encounter",
    "ServiceRequest", "Patient", "OperationOutcome", "Bundle", "Basic",
]  # fmt: skip
SYSTEMS = [
    "http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct", "http://loinc.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm", "http://www.ama-assn.org/go/cpt",
    "http://unitsofmeasure.org", "http://terminology.hl7.org/CodeSystem/condition-clinical",
    "urn:oid:2.16.840.1.113883.6.12", "",
]  # fmt: skip
CODES = [
    "J44.9", "13645005", "11289", "1364430", "6301-6", "34714-6", "777-3", "26515-7", "72514-3",
    "22513", "22510", "22515", "23215003", "66794005", "M80.08XA", "M48.50XA", "active", "resolved",
    "refuted", "10^9/L", "/uL", "{INR}", "C90.00", "G95.20",
]  # fmt: skip
FIELDS = [
    "id", "status", "intent", "code", "clinicalStatus", "verificationStatus", "category", "subject",
    "medicationCodeableConcept", "medicationReference", "valueQuantity", "valueCodeableConcept",
    "valueString", "effectiveDateTime", "effectivePeriod", "onsetDateTime", "abatementDateTime",
    "recordedDate", "authoredOn", "dosageInstruction", "bodySite", "note", "occurrenceDateTime",
    "quantityQuantity", "orderDetail", "reasonCode", "issued", "started", "series", "conclusion",
    "component", "interpretation", "class", "period", "contained", "reaction", "criticality", "type",
    "text", "entry", "ingredient", "modality", "description",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16,
)
codings = st.fixed_dictionaries(
    {"system": st.sampled_from(SYSTEMS), "code": st.sampled_from(CODES) | st.text(max_size=8)},
    optional={"display": st.text(max_size=24)},
)
concepts = st.fixed_dictionaries(
    {"coding": st.lists(codings | json_values, max_size=3)}, optional={"text": st.text(max_size=30)}
)
dates = st.sampled_from(
    ["2026-11-20", "2026-11", "2026", "2026-11-20T10:00:00Z", "2025-02-30", "not-a-date", "", "0000-00-00"]
) | st.text(max_size=12)
quantities = st.fixed_dictionaries(
    {},
    optional={
        "value": st.floats(allow_nan=False, allow_infinity=False) | st.integers() | st.text(max_size=5),
        "unit": st.sampled_from(["10*3/uL", "/uL", "10^9/L", "{INR}", "mg", ""]) | st.text(max_size=5),
        "code": st.sampled_from(CODES),
    },
)
field_values = concepts | dates | quantities | json_values | st.lists(concepts, max_size=3)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=8))
    resource: dict[str, Any] = {"resourceType": draw(st.sampled_from(TYPES)), **fields}
    if draw(st.booleans()):
        resource["subject"] = {"reference": "Patient/sample-patient-1"}
    return resource


def augmentation_order() -> dict[str, Any]:
    body = sample("order-select.json")
    order: dict[str, Any] = body["context"]["draftOrders"]["entry"][0]["resource"]
    return order


@st.composite
def draft_bundles(draw: st.DrawFn) -> dict[str, Any]:
    order = augmentation_order()
    for name, value in draw(st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=4)).items():
        order[name] = value
    entries: list[Any] = [{"resource": order}]
    entries += [{"resource": r} for r in draw(st.lists(resources(), max_size=3))]
    entries += draw(st.lists(json_values, max_size=2))
    return {"resourceType": "Bundle", "entry": entries}


@settings(FUZZ, max_examples=300)
@given(record_resources=st.lists(resources(), max_size=12), draft=draft_bundles(), selections=st.booleans())
def test_the_mappings_rules_and_cards_never_crash_on_odd_fhir(
    record_resources: list[dict[str, Any]], draft: dict[str, Any], selections: bool
) -> None:
    chosen = [f"ServiceRequest/{augmentation_order()['id']}"] if selections else None
    reading = read_draft_order(draft, chosen, CODESETS, frozenset(DEFAULT_THRESHOLDS.procedure_snomed_codes))
    record = PatientRecord()
    record.add(record_resources)
    facts = build_facts(record, reading, AS_OF, CODESETS)
    evaluation = evaluate(facts, DEFAULT_THRESHOLDS, 1)
    if reading.order is not None:
        context = OrderContext(patient_id="sample-patient-1", user_reference="Practitioner/x", region=None)
        render_cards(evaluation, context, lambda: "00000000-0000-4000-8000-000000000001")


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # nothing listens on the one allowed FHIR server: no fuzzed body can make the service fetch elsewhere
    app = make_app(
        tmp_path_factory.mktemp("fuzz"),
        allowed_fhir_servers=[f"http://127.0.0.1:{free_port()}/fhir"],
        fetch_deadline_seconds=1.0,
    )
    with client_for(app) as client:
        yield client


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def hook_bodies(draw: st.DrawFn) -> Any:
    body = copy.deepcopy(sample("order-select.json"))
    how = draw(st.sampled_from(["prefetch", "draft", "anywhere", "anywhere", "random"]))
    if how == "random":
        return draw(json_values)
    if how == "prefetch":
        for key in list(body["prefetch"]):
            if draw(st.booleans()):
                entries = [{"resource": r} for r in draw(st.lists(resources(), max_size=5))]
                body["prefetch"][key] = draw(
                    st.sampled_from([{"resourceType": "Bundle", "entry": entries}, None])
                    | resources()
                    | json_values
                )
        return body
    if how == "draft":
        body["context"]["draftOrders"] = draw(draft_bundles())
        return body
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(body))[1:]))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(json_values)
    return body


@settings(FUZZ, max_examples=150)
@given(body=hook_bodies())
def test_the_hook_endpoint_answers_any_body_with_cards_or_an_operation_outcome(
    fuzz_client: TestClient, body: Any
) -> None:
    response = fuzz_client.post(SELECT, json=body)
    assert response.status_code in (200, 400, 412, 413), response.text
    answer = response.json()
    if response.status_code == 200:
        assert isinstance(answer["cards"], list)
    else:
        assert answer["resourceType"] == "OperationOutcome"
