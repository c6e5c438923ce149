"""The shapes real EHRs send, piece by piece (tests/ehr runs them whole through the endpoint): ids up to 256
characters and no further, an empty access_token, Epic's "no results" bundles against real errors, resources
under keys the service never asked for, medication names from `medicationReference.display`, Medications
beside draft orders, and when an order states its level count."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from cds_service.hooks.discovery import prefetch_keys
from cds_service.hooks.fhir_client import FetchResult
from cds_service.hooks.models import FeedbackItem, HookRequest
from cds_service.hooks.patient_data import gather, needs_fetch
from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from fhir_mappings.medications import index_medications, map_medications
from fhir_mappings.parsing import validation_problem
from rules.facts import ParseIssue, Unreadable
from tests.support.hook_requests import augmentation_order, fhir_authorization, order_select, searchset

KEYS = prefetch_keys(default_codesets())
CODESETS = default_codesets()
SERVER = "https://ehr.example.org/fhir"
EPIC_OID = "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369"


class RecordingFetcher:
    """Records what `gather` asks the FHIR server for, and answers every query with nothing."""

    def __init__(self) -> None:
        self.queries: dict[str, str] = {}
        self.tokens: list[str | None] = []
        self.policy = self  # the URL policy: every base allowed here

    def fhir_base(self, base: str) -> str:
        return base

    def fetch_all(
        self, base_url: str, queries: Mapping[str, str], token: str | None, deadline: float | None = None
    ) -> dict[str, FetchResult]:
        self.queries.update(queries)
        self.tokens.append(token)
        return {key: FetchResult(key=key) for key in queries}


def no_results(self_url: str | None = None, severity: str = "warning") -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": severity,
                            "code": "processing",
                            "details": {"coding": [{"system": EPIC_OID, "code": "4101"}]},
                        }
                    ],
                },
                "search": {"mode": "outcome"},
            }
        ],
    }
    if self_url:
        bundle["link"] = [{"relation": "self", "url": f"{SERVER}/{self_url}"}]
    return bundle


def request(prefetch: dict[str, Any], **options: Any) -> HookRequest:
    body = order_select("pat-1", augmentation_order("va1", "pat-1"), prefetch=prefetch, **options)
    return HookRequest.model_validate(body)


def full_prefetch(**overrides: Any) -> dict[str, Any]:
    prefetch: dict[str, Any] = {k.key: searchset([]) for k in KEYS if not k.needs_encounter}
    prefetch["patient"] = {"resourceType": "Patient", "id": "pat-1"}
    prefetch.update(overrides)
    return prefetch


# ------------------------------------------------------------------------------------------ ids


@pytest.mark.parametrize("length", [64, 65, 208, 256])
def test_ids_and_references_up_to_256_characters_are_read(length: int) -> None:
    long_id = ("e" + "Ab9.-" * 60)[:length]
    body = order_select(long_id, augmentation_order(long_id, long_id), user_id=f"Practitioner/{long_id}")
    parsed = HookRequest.model_validate(body)
    assert parsed.context.selections == [f"ServiceRequest/{long_id}"]


@pytest.mark.parametrize(
    "field", ["selections", "patientId", "userId"], ids=["a selection", "the patient id", "the user"]
)
def test_an_id_of_257_characters_or_a_foreign_character_is_refused(field: str) -> None:
    for bad in ("a" * 257, "abc_def"):
        body = order_select("pat-1", augmentation_order("va1", "pat-1"))
        value = {"selections": [f"ServiceRequest/{bad}"], "patientId": bad, "userId": f"Practitioner/{bad}"}
        body["context"][field] = value[field]
        with pytest.raises(ValidationError):
            HookRequest.model_validate(body)


def test_resource_validation_takes_ids_up_to_256_and_no_further() -> None:
    request_ = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/" + "p" * 200},
        "medicationCodeableConcept": {"text": "apixaban"},
        "contained": [{"resourceType": "Medication", "id": "m" * 100}],
    }
    assert validation_problem({**request_, "id": "a" * 256}) is None
    too_long = validation_problem({**request_, "id": "a" * 257})
    assert too_long is not None
    assert "id" in too_long.problem
    assert validation_problem({**request_, "id": "a_b"}) is not None
    # the stand-in is for the models only: the resource read keeps its own id
    resource = {**request_, "id": "a" * 200}
    assert validation_problem(resource) is None
    assert resource["id"] == "a" * 200


# -------------------------------------------------------------------------------- access token


def test_an_empty_access_token_is_no_token() -> None:
    body = order_select("pat-1", augmentation_order("va1", "pat-1"), fhir_server=SERVER)
    body["fhirAuthorization"] = fhir_authorization("")
    parsed = HookRequest.model_validate(body)
    assert parsed.access_token is None
    fetcher = RecordingFetcher()
    gather(parsed, KEYS, fetcher)  # type: ignore[arg-type]
    assert fetcher.tokens == [None]


def test_a_token_is_still_passed_on() -> None:
    parsed = request({}, fhir_server=SERVER, access_token="t0k3n")
    fetcher = RecordingFetcher()
    gather(parsed, KEYS, fetcher)  # type: ignore[arg-type]
    assert fetcher.tokens == ["t0k3n"]


# ------------------------------------------------------------------------- no results vs errors


def test_an_epic_no_results_bundle_is_no_data_and_not_fetched() -> None:
    parsed = request(full_prefetch(allergies=no_results()), fhir_server=SERVER)
    assert not needs_fetch(parsed, KEYS)
    record, stats = gather(parsed, KEYS, RecordingFetcher())  # type: ignore[arg-type]
    assert "allergies" in stats.prefetch_null
    assert not record.gaps


@pytest.mark.parametrize(
    "value",
    [
        no_results(severity="error"),
        no_results(severity="fatal"),
        {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "processing"}]},
        {
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "OperationOutcome", "issue": []}}],
        },
    ],
    ids=["error outcome", "fatal outcome", "bare warning outcome", "outcome without issues"],
)
def test_a_real_error_is_still_fetched_again(value: dict[str, Any]) -> None:
    parsed = request(full_prefetch(allergies=value), fhir_server=SERVER)
    assert needs_fetch(parsed, KEYS)
    fetcher = RecordingFetcher()
    _, stats = gather(parsed, KEYS, fetcher)  # type: ignore[arg-type]
    assert stats.prefetch_errors == ["allergies"]
    assert list(fetcher.queries) == ["allergies"]


def test_a_no_results_bundle_without_a_server_is_no_gap() -> None:
    record, _ = gather(request(full_prefetch(allergies=no_results())), KEYS, RecordingFetcher())  # type: ignore[arg-type]
    assert not record.gaps


# --------------------------------------------------------------------------- site-named keys


def test_resources_under_site_named_keys_are_used_by_type() -> None:
    apixaban = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "Medication/m1"},
        "subject": {"reference": "Patient/pat-1"},
    }
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "apixaban 5 mg tablet"}}
    prefetch = full_prefetch()
    del prefetch["medicationRequests"], prefetch["allergies"]
    prefetch["medications"] = searchset([apixaban, medication])
    prefetch["allergyList"] = no_results("AllergyIntolerance?patient=pat-1")
    parsed = request(prefetch, fhir_server=SERVER)
    assert not needs_fetch(parsed, KEYS)
    fetcher = RecordingFetcher()
    record, stats = gather(parsed, KEYS, fetcher)  # type: ignore[arg-type]
    assert fetcher.queries == {}
    assert "medicationRequests" in stats.prefetched
    assert "allergies" in stats.prefetch_null
    assert "medications" not in stats.prefetched  # site names never reach the metrics labels
    assert record.of("MedicationRequest") == [apixaban]
    assert record.of("Medication") == [medication]


def test_a_type_no_key_reads_is_ignored_under_a_site_key_and_missing_keys_are_still_fetched() -> None:
    prefetch = {
        "serviceRequestBundle": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "pat-1"}},
                {"resource": {"resourceType": "Coverage", "id": "cov1"}},
            ],
        }
    }
    parsed = request(prefetch, fhir_server=SERVER)
    fetcher = RecordingFetcher()
    record, stats = gather(parsed, KEYS, fetcher)  # type: ignore[arg-type]
    assert stats.prefetched == ["patient"]
    assert "patient" not in fetcher.queries
    assert "conditions" in fetcher.queries
    assert record.of("Coverage") == []
    assert not record.issues


# --------------------------------------------------------------------------------- medications


def medication_request(**medication: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pat-1"},
        **medication,
    }


def test_the_reference_display_names_the_drug() -> None:
    eliquis = medication_request(
        medicationReference={"reference": "Medication/gone", "display": "ELIQUIS 5 MG PO TABS"}
    )
    facts = map_medications([eliquis], {}, CODESETS, [])
    assert [f.ingredient for f in facts] == ["apixaban"]


def test_a_medication_resource_still_comes_first() -> None:
    ref = {"reference": "Medication/m1", "display": "ELIQUIS 5 MG PO TABS"}
    index = index_medications([{"resourceType": "Medication", "id": "m1", "code": {"text": "warfarin 5 mg"}}])
    facts = map_medications([medication_request(medicationReference=ref)], index, CODESETS, [])
    assert [f.ingredient for f in facts] == ["warfarin"]


def test_an_unnamed_medication_is_said() -> None:
    issues: list[ParseIssue] = []
    unreadable: list[Unreadable] = []
    facts = map_medications(
        [medication_request(medicationReference={"reference": "Medication/gone"})],
        {},
        CODESETS,
        issues,
        unreadable,
    )
    assert facts == ()
    assert [u.kind for u in unreadable] == ["medication"]


def test_a_named_medication_of_no_interest_is_not_an_issue() -> None:
    issues: list[ParseIssue] = []
    map_medications(
        [medication_request(medicationReference={"display": "LISINOPRIL 10 MG PO TABS"})],
        {},
        CODESETS,
        issues,
    )
    assert issues == []


def test_a_draft_orders_medication_sibling_is_indexed() -> None:
    order = augmentation_order("va1", "pat-1")
    draft = medication_request(status="draft", medicationReference={"reference": "Medication/m9"})
    heparin = {"resourceType": "Medication", "id": "m9", "code": {"text": "heparin 5000 unit/mL"}}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in (order, draft, heparin)]}
    reading = read_draft_order(bundle, ["ServiceRequest/va1"], CODESETS)
    assert reading.context_medications == [heparin]
    index = index_medications(reading.context_medications)
    assert [
        f.ingredient for f in map_medications(reading.context_medication_requests, index, CODESETS, [])
    ] == ["heparin"]


# ------------------------------------------------------------------------------ level count stated


def order_with(**fields: Any) -> dict[str, Any]:
    order = augmentation_order("va1", "pat-1")
    order.pop("bodySite", None)
    order["code"] = {
        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "22514"}],
        "text": "IR KYPHOPLASTY",
    }
    order.update(fields)
    return order


@pytest.mark.parametrize(
    ("fields", "stated"),
    [
        ({}, False),
        ({"bodySite": [{"text": "L1"}]}, True),
        ({"quantityQuantity": {"value": 2}}, True),
        ({"orderDetail": [{"text": "Levels: T12, L1"}]}, True),
        ({"note": [{"text": "treat L2"}]}, True),
        ({"orderDetail": [{"text": "12/05/26 8:00:00 CST, Routine"}]}, False),
    ],
    ids=[
        "nothing",
        "a body site",
        "a quantity",
        "order detail text",
        "a note",
        "order detail without a level",
    ],
)
def test_when_the_level_count_is_stated(fields: dict[str, Any], stated: bool) -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": order_with(**fields)}]}
    reading = read_draft_order(bundle, ["ServiceRequest/va1"], CODESETS)
    assert reading.order is not None
    assert reading.order.level_count_stated is stated


def test_an_add_on_line_or_a_second_order_states_the_count() -> None:
    add_on = order_with(code={"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "22515"}]})
    add_on["id"] = "va2"
    second = order_with()
    second["id"] = "va3"
    for other in (add_on, second):
        bundle = {"resourceType": "Bundle", "entry": [{"resource": order_with()}, {"resource": other}]}
        reading = read_draft_order(bundle, None, CODESETS)
        assert reading.order is not None
        assert reading.order.level_count_stated


def test_feedback_reason_of_an_item_without_any_is_none() -> None:
    item = FeedbackItem.model_validate(
        {"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T09:00:00Z"}
    )
    assert item.reason is None
