"""CDS Hooks 2.0 conformance, one test per applicable item of
../shared/reference/cds-hooks-2.0-service-checklist.md (sections 0–7) and the pure CDS Hooks checks
of the Inferno CRD server suite (section 8). Test names carry the checklist section."""

from __future__ import annotations

import copy
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.servicerequest import ServiceRequest
from sqlalchemy import func, select

from cds_service.storage.tables import EvaluationRow, FeedbackRow
from testing.fhir_server import free_port
from tests.conformance.spec_checks import is_uuid, response_problems
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"
SIGN = "/cds-services/vertebral-augmentation-sign"


def select_body() -> dict[str, Any]:
    return sample("order-select.json")


def sign_body() -> dict[str, Any]:
    return sample("order-sign.json")


def non_augmentation_body() -> dict[str, Any]:
    body = select_body()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"] = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}], "text": "MRI"}
    del order["bodySite"]
    return body


def rule_ids(response: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response["cards"]]


def assert_outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    assert body["issue"][0]["diagnostics"]
    return body


# --- §0 General JSON rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [(SELECT, select_body()), (SIGN, sign_body()), (SELECT, non_augmentation_body())],
    ids=["order-select", "order-sign", "not-our-order"],
)
def test_s0_responses_hold_no_null_and_no_empty_values_except_empty_cards(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 200
    assert response_problems(response.json()) == []


def test_s0_extensions_are_json_objects(client: TestClient) -> None:
    body = client.post(SIGN, json=sign_body()).json()
    assert isinstance(body["extension"], dict)
    for card in body["cards"]:
        assert isinstance(card["extension"], dict)
        assert isinstance(card["extension"]["vertebral-cds"], dict)


def test_s0_responses_are_json(client: TestClient) -> None:
    response = client.post(SELECT, json=select_body())
    assert response.headers["content-type"].startswith("application/json")


# --- §1 Discovery ----------------------------------------------------------------------------


def test_s1_discovery_answers_200_with_a_services_array(client: TestClient) -> None:
    response = client.get("/cds-services", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert isinstance(response.json()["services"], list)
    assert response.json()["services"]


def test_s1_every_service_has_string_hook_description_id_title_and_usage(client: TestClient) -> None:
    for service in client.get("/cds-services").json()["services"]:
        for field in ("hook", "description", "id", "title", "usageRequirements"):
            assert isinstance(service[field], str)
            assert service[field]


def test_s1_each_hook_has_its_own_service_id_so_the_sandbox_does_not_overwrite_one(
    client: TestClient,
) -> None:
    services = client.get("/cds-services").json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("vertebral-augmentation-select", "order-select"),
        ("vertebral-augmentation-sign", "order-sign"),
    }


def test_s1_service_url_is_base_plus_id(client: TestClient) -> None:
    for service in client.get("/cds-services").json()["services"]:
        body = select_body() if service["hook"] == "order-select" else sign_body()
        assert client.post(f"/cds-services/{service['id']}", json=body).status_code == 200


ALLOWED_TOKENS = {"context.patientId", "context.userId", "context.encounterId"}
# R4 search parameters the templates may use, per resource type (from the R4 spec's search pages).
R4_SEARCH_PARAMETERS = {
    "Condition": {"patient", "clinical-status", "code"},
    "Observation": {"patient", "code", "date", "_count", "_sort"},
    "MedicationRequest": {"patient", "status", "_include"},
    "MedicationStatement": {"patient", "status", "_include"},
    "AllergyIntolerance": {"patient"},
    "DiagnosticReport": {"patient", "category", "code"},
    "ImagingStudy": {"patient"},
    "Procedure": {"patient", "code"},
}


def test_s3_prefetch_templates_use_only_cds_hooks_2_tokens(client: TestClient) -> None:
    for service in client.get("/cds-services").json()["services"]:
        for template in service["prefetch"].values():
            tokens = set(re.findall(r"\{\{([^}]*)\}\}", template))
            assert tokens <= ALLOWED_TOKENS, template
            assert "today()" not in template


def test_s3_prefetch_templates_are_valid_r4_reads_or_searches(client: TestClient) -> None:
    templates = client.get("/cds-services").json()["services"][0]["prefetch"]
    for key, template in templates.items():
        parts = urlsplit(template)
        if not parts.query:
            assert re.fullmatch(r"[A-Z][A-Za-z]+/\{\{context\.\w+\}\}", template), key
            continue
        resource_type = parts.path
        params = parse_qsl(parts.query, keep_blank_values=True)
        assert resource_type in R4_SEARCH_PARAMETERS, key
        for name, value in params:
            assert name in R4_SEARCH_PARAMETERS[resource_type], (key, name)
            assert value, (key, name)
        assert ("patient", "{{context.patientId}}") in params, key


def test_s3_prefetch_covers_everything_the_rules_read(client: TestClient) -> None:
    templates = client.get("/cds-services").json()["services"][0]["prefetch"]
    types = {urlsplit(t).path.split("/")[0] for t in templates.values()}
    assert types >= {
        "Patient",
        "Condition",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "AllergyIntolerance",
        "DiagnosticReport",
        "ImagingStudy",
        "Procedure",
    }
    loinc = templates["observations"]
    for code in ("6301-6", "777-3", "72514-3", "19926-5"):  # INR, platelets, pain, FEV1/FVC
        assert f"http://loinc.org|{code}" in loinc


# --- §2 Service call: validation -------------------------------------------------------------


def _mutated(mutate: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    body = copy.deepcopy(base or select_body())
    mutate(body)
    return body


BAD_REQUESTS = {
    "hook does not match the service": lambda b: b.update(hook="order-sign"),
    "hookInstance is not a UUID": lambda b: b.update(hookInstance="not-a-uuid"),
    "hookInstance missing": lambda b: b.pop("hookInstance"),
    "context missing": lambda b: b.pop("context"),
    "fhirAuthorization without fhirServer": lambda b: b.update(
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "vcds",
        }
    ),
    "fhirAuthorization expires_in not an integer": lambda b: b.update(
        fhirServer="http://127.0.0.1:9/fhir",
        fhirAuthorization={
            "access_token": "t",
            "token_type": "Bearer",
            "expires_in": "300",
            "scope": "patient/*.read",
            "subject": "vcds",
        },
    ),
    "userId is a bare id": lambda b: b["context"].update(userId="example"),
    "patientId is a reference": lambda b: b["context"].update(patientId="Patient/123"),
    "encounterId is a reference": lambda b: b["context"].update(encounterId="Encounter/9"),
    "selections missing on order-select": lambda b: b["context"].pop("selections"),
    "selections not references": lambda b: b["context"].update(selections=["va-order-1"]),
    "draftOrders missing": lambda b: b["context"].pop("draftOrders"),
    "draftOrders not a Bundle": lambda b: b["context"].update(draftOrders={"resourceType": "ServiceRequest"}),
    "body is a JSON array": lambda b: (b.clear(), None),
}


@pytest.mark.parametrize("mutate", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_s2_invalid_hook_requests_get_400_with_an_operation_outcome(client: TestClient, mutate: Any) -> None:
    body: Any = _mutated(mutate)
    if body == {}:
        body = []
    outcome = assert_outcome(client.post(SELECT, json=body), 400)
    assert "access_token" not in str(outcome)


def test_s2_a_draft_orders_bundle_without_type_is_accepted(client: TestClient) -> None:
    body = select_body()
    assert "type" not in body["context"]["draftOrders"]
    assert client.post(SELECT, json=body).status_code == 200


def test_s2_unknown_fields_and_an_empty_coding_are_accepted(client: TestClient) -> None:
    body = select_body()
    body["someVendorField"] = {"x": 1}
    body["context"]["vendorContext"] = "y"
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["category"] = [{"coding": []}]
    response = client.post(SELECT, json=body)
    assert response.status_code == 200
    assert "copd-multilevel" in rule_ids(response.json())


def test_s2_sandbox_pama_style_order_with_intent_plan_and_no_requester_is_accepted(
    client: TestClient,
) -> None:
    body = select_body()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["intent"] = "plan"
    order.pop("requester", None)
    assert client.post(SELECT, json=body).status_code == 200


def test_s2_order_select_gives_guidance_only_for_selected_orders(client: TestClient) -> None:
    body = select_body()
    body["context"]["draftOrders"]["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "med-new",
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": {"text": "Acetaminophen 500 MG Oral Tablet"},
                "subject": {"reference": "Patient/sample-patient-1"},
            }
        }
    )
    body["context"]["selections"] = ["MedicationRequest/med-new"]
    response = client.post(SELECT, json=body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_s2_unselected_augmentation_orders_still_count_as_context_for_levels(client: TestClient) -> None:
    body = select_body()
    entries = body["context"]["draftOrders"]["entry"]
    first = entries[0]["resource"]
    first["bodySite"] = first["bodySite"][:1]
    for index, site in enumerate(
        sample("order-select.json")["context"]["draftOrders"]["entry"][0]["resource"]["bodySite"][1:]
    ):
        extra = copy.deepcopy(first)
        extra["id"] = f"va-order-{index + 2}"
        extra["bodySite"] = [site]
        entries.append({"resource": extra})
    body["context"]["selections"] = ["ServiceRequest/va-order-3"]
    assert "copd-multilevel" in rule_ids(client.post(SELECT, json=body).json())


def test_s2_a_call_without_an_augmentation_order_answers_empty_cards_without_fetching(
    client: TestClient,
) -> None:
    body = non_augmentation_body()
    body.pop("prefetch")
    body["fhirServer"] = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens: a fetch would fail
    started = time.perf_counter()
    response = client.post(SELECT, json=body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}
    assert time.perf_counter() - started < 1.0


def test_s2_the_sandbox_first_call_with_an_empty_order_gets_empty_cards(client: TestClient) -> None:
    body = select_body()
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": []}
    body["context"]["selections"] = []
    assert client.post(SELECT, json=body).json() == {"cards": []}


def test_s2_order_sign_needs_no_selections_and_evaluates_every_draft_order(client: TestClient) -> None:
    body = sign_body()
    assert "selections" not in body["context"]
    assert "copd-multilevel" in rule_ids(client.post(SIGN, json=body).json())


# --- §3 Prefetch semantics (the fetch path itself is tested against a real server in integration) --


def test_s3_an_absent_key_without_fhir_server_becomes_a_data_unavailable_card(client: TestClient) -> None:
    body = select_body()
    del body["prefetch"]["medicationRequests"]
    cards = client.post(SELECT, json=body).json()["cards"]
    assert "data-unavailable" in [c["source"]["topic"]["code"] for c in cards]
    assert "anticoagulant-active" not in [c["source"]["topic"]["code"] for c in cards]
    unavailable = next(c for c in cards if c["source"]["topic"]["code"] == "data-unavailable")
    assert "medications" in unavailable["summary"]
    assert "anticoagulants" in unavailable["detail"]


def test_s3_a_null_key_means_no_data_not_a_failure(client: TestClient) -> None:
    body = select_body()
    body["prefetch"]["medicationRequests"] = None
    codes = rule_ids(client.post(SELECT, json=body).json())
    assert "data-unavailable" not in codes
    assert "anticoagulant-active" not in codes


def test_s3_an_operation_outcome_value_is_treated_as_a_failed_prefetch(client: TestClient) -> None:
    body = select_body()
    body["prefetch"]["conditions"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    codes = rule_ids(client.post(SELECT, json=body).json())
    assert "data-unavailable" in codes
    assert "copd-multilevel" not in codes  # COPD could not be read: no card claims it


def test_s3_a_bundle_of_operation_outcomes_is_treated_as_a_failed_prefetch(client: TestClient) -> None:
    body = select_body()
    body["prefetch"]["conditions"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}}
        ],
    }
    assert "data-unavailable" in rule_ids(client.post(SELECT, json=body).json())


def test_s3_no_prefetch_and_no_reachable_fhir_server_answers_412(client: TestClient) -> None:
    body = select_body()
    del body["prefetch"]
    assert_outcome(client.post(SELECT, json=body), 412)
    body["fhirServer"] = f"http://127.0.0.1:{free_port()}/fhir"
    assert_outcome(client.post(SELECT, json=body), 412)


# --- §4 Response ----------------------------------------------------------------------------


@pytest.fixture
def select_response(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.post(SELECT, json=select_body()).json()
    return body


@pytest.fixture
def sign_response(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.post(SIGN, json=sign_body()).json()
    return body


def test_s4_every_card_passes_the_card_rules(
    select_response: dict[str, Any], sign_response: dict[str, Any]
) -> None:
    assert len(select_response["cards"]) >= 3
    assert response_problems(select_response) == []
    assert response_problems(sign_response) == []


def test_s4_summaries_are_at_most_139_characters(select_response: dict[str, Any]) -> None:
    assert all(len(card["summary"]) <= 139 for card in select_response["cards"])


def test_s4_every_card_and_suggestion_has_a_uuid_and_they_are_unique(select_response: dict[str, Any]) -> None:
    ids = [c["uuid"] for c in select_response["cards"]]
    ids += [s["uuid"] for c in select_response["cards"] for s in c.get("suggestions", [])]
    assert all(is_uuid(i) for i in ids)
    assert len(ids) == len(set(ids))


def test_s4_source_topic_code_is_the_rule_id_in_a_project_code_system(
    select_response: dict[str, Any],
) -> None:
    for card in select_response["cards"]:
        topic = card["source"]["topic"]
        assert topic["system"] == "http://vertebral-cds.org/fhir/CodeSystem/rule"
        assert topic["code"] == card["extension"]["vertebral-cds"]["rule"]


def test_s4_card_extension_carries_rule_findings_and_thresholds_version(
    select_response: dict[str, Any],
) -> None:
    for card in select_response["cards"]:
        extension = card["extension"]["vertebral-cds"]
        assert extension["thresholdsVersion"] == 1
        assert extension["findings"]
        for finding in extension["findings"]:
            assert finding["outcome"] in ("met", "not-met", "unknown", "not-applicable")
            assert finding["criterion"]


def test_s4_cards_are_sorted_most_severe_first(select_response: dict[str, Any]) -> None:
    order = {"critical": 0, "warning": 1, "info": 2}
    ranks = [order[c["indicator"]] for c in select_response["cards"]]
    assert ranks == sorted(ranks)


def test_s4_suggested_resources_are_valid_fhir_r4(select_response: dict[str, Any]) -> None:
    actions = [a for c in select_response["cards"] for s in c.get("suggestions", []) for a in s["actions"]]
    assert actions
    for action in actions:
        if "resource" in action:
            assert action["resource"]["resourceType"] == "ServiceRequest"
            ServiceRequest.model_validate(action["resource"])


def test_s4_copd_staging_suggestion_updates_the_selected_draft_order(select_response: dict[str, Any]) -> None:
    copd = next(c for c in select_response["cards"] if c["source"]["topic"]["code"] == "copd-multilevel")
    update = copd["suggestions"][0]["actions"][0]
    assert update["type"] == "update"
    assert update["resource"]["id"] == "va-order-1"
    assert len(update["resource"]["bodySite"]) == 2


def test_s4_override_reasons_have_code_system_and_display(select_response: dict[str, Any]) -> None:
    for card in select_response["cards"]:
        assert card["overrideReasons"]
        for reason in card["overrideReasons"]:
            assert reason["code"]
            assert reason["system"].startswith("http")
            assert reason["display"]


def test_s4_links_are_absolute_without_app_context(select_response: dict[str, Any]) -> None:
    links = [link for card in select_response["cards"] for link in card.get("links", [])]
    assert links
    for link in links:
        assert link["type"] == "absolute"
        assert link["url"].startswith("https://")
        assert "appContext" not in link


def test_s4_order_sign_puts_system_actions_at_top_level_and_for_the_sandbox_under_extension(
    sign_response: dict[str, Any],
) -> None:
    actions = sign_response["systemActions"]
    assert actions
    assert sign_response["extension"]["systemActions"] == actions
    for action in actions:
        assert action["description"]
        assert action["type"] == "update"
        assert action["resource"]["id"] == "va-order-1"


def test_s4_order_select_sends_no_system_actions(select_response: dict[str, Any]) -> None:
    assert "systemActions" not in select_response


# --- §5 Feedback ------------------------------------------------------------------------------


def _feedback(card: str, **item: Any) -> dict[str, Any]:
    return {"feedback": [{"card": card, "outcomeTimestamp": "2026-11-21T10:05:31Z", **item}]}


def test_s5_feedback_for_an_accepted_suggestion_is_stored_and_linked_to_the_evaluation(
    client: TestClient, select_response: dict[str, Any]
) -> None:
    card = next(c for c in select_response["cards"] if c.get("suggestions"))
    body = _feedback(
        card["uuid"], outcome="accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}]
    )
    response = client.post(f"{SELECT}/feedback", json=body)
    assert response.status_code == 200
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        row = session.scalars(select(FeedbackRow)).one()
        evaluation = session.get(EvaluationRow, row.evaluation_id)
    assert row.outcome == "accepted"
    assert row.rule == card["source"]["topic"]["code"]
    assert evaluation is not None
    assert evaluation.hook_instance == select_body()["hookInstance"]


def test_s5_accepted_feedback_without_accepted_suggestions_is_rejected(client: TestClient) -> None:
    assert_outcome(client.post(f"{SELECT}/feedback", json=_feedback("c1", outcome="accepted")), 400)


def test_s5_sandbox_style_override_reason_without_display_is_accepted(client: TestClient) -> None:
    reason = {
        "reason": {
            "code": "already-addressed",
            "system": "http://vertebral-cds.org/fhir/CodeSystem/override-reason",
        }
    }
    response = client.post(
        f"{SELECT}/feedback", json=_feedback("c1", outcome="overridden", overrideReason=reason)
    )
    assert response.status_code == 200


def test_s5_duplicate_feedback_is_accepted_once(client: TestClient) -> None:
    body = _feedback("card-dup", outcome="overridden")
    assert client.post(f"{SELECT}/feedback", json=body).status_code == 200
    second = client.post(f"{SELECT}/feedback", json=body)
    assert second.status_code == 200
    assert second.json()["duplicates"] == 1
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(func.count()).select_from(FeedbackRow)) == 1


def test_s5_a_batch_of_feedback_is_stored_item_by_item(client: TestClient) -> None:
    items = [
        {"card": f"c{i}", "outcome": "overridden", "outcomeTimestamp": f"2026-11-21T10:0{i}:00Z"}
        for i in range(3)
    ]
    assert client.post(f"{SELECT}/feedback", json={"feedback": items}).json()["stored"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"feedback": []},
        {"feedback": [{"card": "c", "outcome": "maybe", "outcomeTimestamp": "2026-11-21T10:05:31Z"}]},
        {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]},
        {"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:05:31Z"}]},
    ],
    ids=["empty", "bad-outcome", "bad-timestamp", "no-card"],
)
def test_s5_malformed_feedback_gets_400(client: TestClient, body: dict[str, Any]) -> None:
    assert_outcome(client.post(f"{SELECT}/feedback", json=body), 400)


def test_s5_feedback_to_an_unknown_service_gets_404(client: TestClient) -> None:
    assert_outcome(client.post("/cds-services/nope/feedback", json=_feedback("c", outcome="overridden")), 404)


# --- §6 CORS -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/cds-services", SELECT, f"{SELECT}/feedback"])
def test_s6_preflight_is_answered_without_auth_on_discovery_service_and_feedback(
    client: TestClient, path: str
) -> None:
    response = client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://sandbox.cds-hooks.org")
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert "POST" in response.headers["access-control-allow-methods"]


def test_s6_simple_requests_carry_the_cors_header(client: TestClient) -> None:
    response = client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert response.headers["access-control-allow-origin"] in ("*", "https://sandbox.cds-hooks.org")


# --- §7 Errors --------------------------------------------------------------------------------


def test_s7_unknown_service_gets_404(client: TestClient) -> None:
    assert_outcome(client.post("/cds-services/unknown-service", json=select_body()), 404)


def test_s7_malformed_json_gets_400(client: TestClient) -> None:
    response = client.post(SELECT, content=b'{"hook": ', headers={"Content-Type": "application/json"})
    assert_outcome(response, 400)


def test_s7_wrong_method_gets_405(client: TestClient) -> None:
    assert_outcome(client.get(SELECT), 405)


def test_s7_unsupported_media_type_gets_415(client: TestClient) -> None:
    response = client.post(SELECT, content=b"hook=order-select", headers={"Content-Type": "text/plain"})
    assert_outcome(response, 415)


def test_s7_too_large_body_gets_413(tmp_path: Any) -> None:
    with client_for(make_app(tmp_path, max_request_bytes=2000)) as small:
        assert_outcome(small.post(SELECT, json=select_body()), 413)


def test_s7_error_bodies_are_operation_outcomes_with_fhir_media_type(client: TestClient) -> None:
    response = client.post("/cds-services/unknown-service", json=select_body())
    assert response.headers["content-type"].startswith("application/fhir+json")


# --- §8 Inferno CRD server suite: the pure CDS Hooks checks ------------------------------------


def test_s8_inferno_discovery_with_accept_json_is_200_and_valid_json(client: TestClient) -> None:
    response = client.get("/cds-services", headers={"Accept": "application/json"})
    assert response.status_code == 200
    services = response.json()["services"]
    assert all(isinstance(s[k], str) and s[k] for s in services for k in ("hook", "description", "id"))


def test_s8_inferno_service_call_with_its_order_select_body_answers_200(client: TestClient) -> None:
    # Inferno's preset sends a MedicationRequest order with fhirServer and a token; not our order: cards [].
    body = {
        "hook": "order-select",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://inferno.healthit.gov/reference-server/r4",
        "fhirAuthorization": {
            "access_token": "SAMPLE_TOKEN",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
            "patient": "85",
        },
        "context": {
            "userId": "Practitioner/example",
            "patientId": "85",
            "selections": ["MedicationRequest/smart-MedicationRequest-103"],
            "draftOrders": {
                "resourceType": "Bundle",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "MedicationRequest",
                            "id": "smart-MedicationRequest-103",
                            "status": "draft",
                            "intent": "order",
                            "medicationCodeableConcept": {"text": "Amoxicillin"},
                            "subject": {"reference": "Patient/85"},
                        }
                    }
                ],
            },
        },
    }
    response = client.post(SELECT, json=body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_s8_inferno_order_sign_response_has_system_actions(sign_response: dict[str, Any]) -> None:
    assert isinstance(sign_response["systemActions"], list)
    assert sign_response["systemActions"]


# --- Bad input loses nothing: one malformed resource never sinks the call ---------------------


def test_a_malformed_resource_is_skipped_and_named_while_the_rest_is_evaluated(client: TestClient) -> None:
    body = select_body()
    body["prefetch"]["medicationRequests"]["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "broken-warfarin",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "Warfarin 5 mg"},
                "subject": {"reference": "Patient/sample-patient-1"},
                "authoredOn": "not-a-date",
            }
        }
    )
    response = client.post(SELECT, json=body)
    assert response.status_code == 200
    cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    assert "copd-multilevel" in cards
    assert cards["anticoagulant-active"]["extension"]["vertebral-cds"]["findings"][0]["evidence"] == [
        "MedicationRequest/med-apixaban"
    ]
    assert "MedicationRequest/broken-warfarin" in cards["data-unavailable"]["detail"]
    assert "could not be read" in cards["data-unavailable"]["summary"]
