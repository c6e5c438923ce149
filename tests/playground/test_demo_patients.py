"""The demo patients, and hook requests built from a bundle and an order (`cds_service.playground.demo`)."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from cds_service.hooks.discovery import prefetch_keys
from cds_service.playground import demo
from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from tests.support.app import FIXED_NOW, client_for, make_app

CODESETS = default_codesets()
KEYS = prefetch_keys(CODESETS)
TODAY = FIXED_NOW.date()
PATHS = {
    "order-select": "/cds-services/vertebral-augmentation-select",
    "order-sign": "/cds-services/vertebral-augmentation-sign",
}


def validate_r4b(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    model = getattr(import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)
    model.model_validate(resource)


def rules(response: dict[str, Any]) -> list[str]:
    return sorted(card["source"]["topic"]["code"] for card in response["cards"])


# --------------------------------------------------------------------------- the files


def test_every_demo_file_has_a_story_and_every_story_a_file() -> None:
    files = sorted(p.stem for p in demo.DEMO_DIR.glob("*.json"))
    assert files == sorted(demo.DEMO_PATIENTS_BY_ID)
    assert len(files) == 6


@pytest.mark.parametrize("patient", demo.DEMO_PATIENTS, ids=lambda p: p.id)
def test_a_demo_bundle_is_one_patients_valid_r4_collection(patient: demo.DemoPatient) -> None:
    bundle = patient.bundle()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    validate_r4b(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert len(patients) == 1
    patient_ref = f"Patient/{patients[0]['id']}"
    for resource in resources:
        validate_r4b(resource)
        subject = resource.get("subject") or resource.get("patient")
        if subject:
            assert subject["reference"] == patient_ref, resource["id"]
    assert len({r["id"] for r in resources}) == len(resources)


@pytest.mark.parametrize("patient", demo.DEMO_PATIENTS, ids=lambda p: p.id)
@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_demo_patients_story_gives_the_cards_it_promises(
    patient: demo.DemoPatient, hook: str, tmp_path: Path
) -> None:
    record = demo.read_bundle(patient.bundle(TODAY))
    request = demo.hook_request(record, patient.order(TODAY), hook, KEYS, CODESETS)
    with client_for(make_app(tmp_path)) as client:
        response = client.post(PATHS[hook], json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert rules(body) == sorted(patient.shows)
    assert record.skipped == {}, "a demo bundle holds only what the service reads"
    if hook == "order-sign":
        assert body["systemActions"]


def test_the_stories_cover_the_main_cases() -> None:
    shown = {rule for p in demo.DEMO_PATIENTS for rule in p.shows}
    assert {"anticoagulant-active", "copd-multilevel", "spinal-infection", "neoplastic-indication"} <= shown
    assert "eligibility" in demo.demo_patient("eligible-l1").shows
    assert demo.demo_patient("copd-multilevel").levels == ("T11", "T12", "L1")


def test_rebased_dates_keep_a_story_true_a_year_later(tmp_path: Path) -> None:
    later = FIXED_NOW + timedelta(days=400)
    patient = demo.demo_patient("apixaban")
    bundle = patient.bundle(later.date())
    pain = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"].endswith("-pain"))
    assert pain["effectiveDateTime"] == "2027-12-25T08:00:00Z"  # 2026-11-20 + 400 days, time kept
    record = demo.read_bundle(bundle)
    request = demo.hook_request(record, patient.order(later.date()), "order-select", KEYS, CODESETS)
    app = make_app(tmp_path, clock=lambda: later)
    with client_for(app) as client:
        response = client.post(PATHS["order-select"], json=request)
    assert rules(response.json()) == sorted(patient.shows)


def test_rebasing_to_the_anchor_changes_nothing() -> None:
    patient = demo.demo_patient("myeloma")
    assert patient.bundle(demo.DEMO_ANCHOR) == patient.bundle()


# --------------------------------------------------------------------------- the order


@pytest.mark.parametrize(
    ("words", "levels"),
    [
        ("T12,L1", ("T12", "L1")),
        ("L1, t12", ("T12", "L1")),
        ("T11-L1", ("T11", "T12", "L1")),
        (["T12", "L1", "T12"], ("T12", "L1")),
        ("C7 T1", ("C7", "T1")),
    ],
)
def test_levels_are_read_by_name_or_range(words: str | list[str], levels: tuple[str, ...]) -> None:
    assert demo.parse_levels(words) == levels


@pytest.mark.parametrize("words", ["", "lumbar", "the spine"])
def test_words_without_a_level_are_refused(words: str) -> None:
    with pytest.raises(demo.DemoError, match="no vertebral level"):
        demo.parse_levels(words)


@pytest.mark.parametrize(("words", "wrong"), [("T13", "T13"), ("T12, L6", "L6"), ("C8-T2", "C8")])
def test_a_level_that_is_no_vertebra_is_refused_not_dropped(words: str, wrong: str) -> None:
    with pytest.raises(demo.DemoError, match=f"{wrong} is not a vertebra"):
        demo.parse_levels(words)


@pytest.mark.parametrize(
    ("procedure", "levels", "cpt"),
    [
        ("vertebroplasty", ("T8",), "22510"),
        ("vertebroplasty", ("C7", "T1"), "22510"),
        ("vertebroplasty", ("L3",), "22511"),
        ("kyphoplasty", ("T12", "L1"), "22513"),
        ("kyphoplasty", ("L2", "L3"), "22514"),
    ],
)
def test_the_cpt_code_follows_procedure_and_region(procedure: str, levels: tuple[str, ...], cpt: str) -> None:
    assert demo.OrderSpec(procedure, levels).cpt == cpt  # type: ignore[arg-type]


def test_kyphoplasty_of_a_cervical_level_is_refused() -> None:
    with pytest.raises(demo.DemoError, match="thoracic and lumbar"):
        demo.OrderSpec("kyphoplasty", ("C5",))


def test_an_unknown_procedure_is_refused() -> None:
    with pytest.raises(demo.DemoError, match="vertebroplasty or kyphoplasty"):
        demo.OrderSpec("discectomy", ("L4",))  # type: ignore[arg-type]


def test_the_order_the_service_reads_back_is_the_order_built() -> None:
    spec = demo.OrderSpec("kyphoplasty", ("T11", "T12", "L1"), TODAY + timedelta(days=14))
    order = demo.augmentation_order(spec, "pat-1", CODESETS)
    validate_r4b(order)
    snomed = [(s["coding"][0]["system"], s["coding"][0]["code"]) for s in order["bodySite"]]
    assert [CODESETS.vertebra_level(system, code) for system, code in snomed] == ["T11", "T12", "L1"]
    reading = read_draft_order(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
        ["ServiceRequest/va-order-1"],
        CODESETS,
    )
    assert reading.order is not None
    assert reading.order.procedure == "kyphoplasty"
    assert reading.order.levels == ("T11", "T12", "L1")
    assert reading.order.level_count == 3
    assert reading.order.planned_date == spec.planned
    assert not reading.order.is_demo_stand_in


def test_a_level_without_a_snomed_code_is_named_in_text_and_still_read() -> None:
    spec = demo.OrderSpec("vertebroplasty", ("C5",))
    order = demo.augmentation_order(spec, "pat-1", CODESETS)
    assert order["bodySite"] == [{"text": "C5 vertebra"}]
    assert "occurrenceDateTime" not in order
    reading = read_draft_order(
        {"resourceType": "Bundle", "entry": [{"resource": order}]}, ["ServiceRequest/va-order-1"], CODESETS
    )
    assert reading.order is not None
    assert reading.order.levels == ("C5",)


def test_order_select_selects_the_order_and_order_sign_does_not() -> None:
    record = demo.read_bundle(demo.demo_patient("eligible-l1").bundle())
    spec = demo.OrderSpec("kyphoplasty", ("L1",))
    select = demo.hook_request(record, spec, "order-select", KEYS, CODESETS)
    sign = demo.hook_request(record, spec, "order-sign", KEYS, CODESETS)
    assert select["context"]["selections"] == ["ServiceRequest/va-order-1"]
    assert "selections" not in sign["context"]
    assert select["context"]["patientId"] == "margaret-ellison"
    with pytest.raises(demo.DemoError, match="order-select or order-sign"):
        demo.hook_request(record, spec, "patient-view", KEYS, CODESETS)


def test_every_prefetch_key_but_the_encounter_is_filled() -> None:
    record = demo.read_bundle(demo.demo_patient("copd-multilevel").bundle())
    prefetch = demo.prefetch(record, KEYS)
    assert set(prefetch) == {k.key for k in KEYS} - {"encounter"}
    assert prefetch["patient"]["id"] == "dorothy-kaminski"
    for key in prefetch.keys() - {"patient"}:
        assert prefetch[key]["type"] == "searchset"
    assert {e["resource"]["resourceType"] for e in prefetch["conditions"]["entry"]} == {"Condition"}


# --------------------------------------------------------------------------- any bundle


def test_a_transaction_bundle_with_urn_uuid_references_is_read_as_a_server_would_store_it() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                "resource": {"resourceType": "Patient", "id": "11111111-1111-4111-8111-111111111111"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {"resource": {"resourceType": "Claim", "id": "c1"}},
        ],
    }
    record = demo.read_bundle(bundle)
    assert record.patient_id == "11111111-1111-4111-8111-111111111111"
    condition = record.resources[0]
    assert condition["id"] == "22222222-2222-4222-8222-222222222222"
    assert condition["subject"]["reference"] == "Patient/11111111-1111-4111-8111-111111111111"
    demo.prefetch(record, KEYS)
    assert record.skipped == {"Claim": 1}


def test_a_bundle_without_a_patient_takes_the_id_its_resources_name() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p-9"}}}
        ],
    }
    assert demo.read_bundle(bundle).patient == {"resourceType": "Patient", "id": "p-9"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"resourceType": "Patient", "id": "x"}, "expected a FHIR Bundle, got Patient"),
        ([1, 2], "expected a FHIR Bundle, got list"),
        ({"resourceType": "Bundle", "entry": {"not": "a list"}}, "must be a list"),
        (
            {
                "resourceType": "Bundle",
                "entry": [{"resource": {"resourceType": "Patient", "id": f"p{i}"}} for i in range(2)],
            },
            "2 patients",
        ),
        (
            {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "a b"}}]},
            "not a FHIR id",
        ),
    ],
)
def test_what_is_not_one_patients_bundle_is_refused_with_a_reason(document: Any, message: str) -> None:
    with pytest.raises(demo.DemoError, match=message):
        demo.read_bundle(document)


@pytest.mark.fixtures
def test_a_synthea_patient_is_read_with_its_references_resolved(synthea_dir: Path) -> None:
    path = next(synthea_dir.glob("Hallie_Hoeger_*.json"))
    record = demo.read_bundle(json.loads(path.read_text(encoding="utf-8")))
    assert record.patient["name"][0]["family"] == "Hoeger"
    references = json.dumps(record.resources)
    assert "urn:uuid:" not in references
    assert f'"Patient/{record.patient_id}"' in references
    prefetch = demo.prefetch(record, KEYS)
    assert {"Claim", "ExplanationOfBenefit", "Encounter"} <= set(record.skipped)
    assert prefetch["medicationRequests"]["total"] > 0
