"""CDS Hooks 3.0 (ballot) readiness without breaking 2.0 clients: versions in discovery's `extension`,
override reasons coded from the 3.0 non-adherence reason codes where one fits, the sandbox demo codes
named in discovery. (SMART v2 scopes: tests/unit/test_smart_scopes.py and the fetch tests in
tests/integration/test_prefetch_and_fetch.py.)"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cards.render import NON_ADHERENCE_SYSTEM, OVERRIDE_REASON_SYSTEM
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"
# http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes (CDS Hooks 3.0.0-ballot), every code
NON_ADHERENCE_CODES = {
    "cds-not-applicable", "patient-ineligible", "indication-order-exists", "action-completed",
    "action-unsuccessful", "action-performed-no-adverse-effect", "action-not-priority",
    "cds-suboptimal-context", "limited-time", "wrong-time-workflow", "inappropriate-recipient",
    "need-more-info", "recipient-disagrees-evidence", "does-not-align-latest-evidence",
    "expert-contradicts", "policy-contradicts", "recipient-does-not-trust", "recipient-concerns-outcomes",
    "risk-benefit-ratio", "mitigate-risk-negative-outcome", "likely-negative-health-outcomes",
    "patient-contraindication", "does-not-align-preferences", "patient-fears-discomfort",
    "patient-does-not-want-change", "cultural-religious-reason", "prefers-alternative", "patient-refuses",
    "not-convenient-feasible", "inadequate-support", "service-not-available", "implementation-challenges",
    "too-costly-uncovered", "recipient-does-not-understand", "comorbidity-disability",
}  # fmt: skip


def test_discovery_names_the_spec_version_and_each_hook_version_in_extensions(client: TestClient) -> None:
    document = client.get("/cds-services").json()
    assert document["extension"]["org.vertebral-cds"]["specVersion"] == "2.0"
    assert "3.0.0-ballot" in document["extension"]["org.vertebral-cds"]["compatibleSpecVersions"]
    for service in document["services"]:
        versions = service["extension"]["org.vertebral-cds"]
        assert versions["hookVersion"] == "1.0"
        assert versions["specVersion"] == "2.0"


def test_override_reasons_use_3_0_codes_where_one_fits_and_the_services_own_otherwise(
    client: TestClient,
) -> None:
    cards = client.post(SELECT, json=sample("order-select.json")).json()["cards"]
    reasons = [reason for card in cards for reason in card.get("overrideReasons", [])]
    assert reasons
    systems = {reason["system"] for reason in reasons}
    assert systems <= {NON_ADHERENCE_SYSTEM, OVERRIDE_REASON_SYSTEM}
    assert NON_ADHERENCE_SYSTEM in systems
    for reason in reasons:
        if reason["system"] == NON_ADHERENCE_SYSTEM:
            assert reason["code"] in NON_ADHERENCE_CODES
        assert reason["display"]


def test_feedback_with_a_3_0_override_reason_is_stored(client: TestClient) -> None:
    card = client.post(SELECT, json=sample("order-select.json")).json()["cards"][0]
    reason = next(r for r in card["overrideReasons"] if r["system"] == NON_ADHERENCE_SYSTEM)
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": reason["code"], "system": reason["system"]}},
                "outcomeTimestamp": "2026-11-21T10:00:00Z",
            }
        ]
    }
    response = client.post(f"{SELECT}/feedback", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1


SANDBOX_SPINE_CODES = {  # the cervical/thoracic/lumbar CT and MRI codes of the sandbox's PAMA screen
    "72125", "72126", "72127", "72128", "72129", "72130", "72131", "72132", "72133",
    "72141", "72142", "72156", "72146", "72147", "72157", "72148", "72149", "72158",
}  # fmt: skip
RADIOGRAPHS = {"72040", "72070", "72100"}


def test_with_the_demo_mapping_on_discovery_lists_every_sandbox_spine_code(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path, demo_imaging_stand_in=True)) as client:
        select = client.get("/cds-services").json()["services"][0]
    assert select["hook"] == "order-select"
    for code in SANDBOX_SPINE_CODES | RADIOGRAPHS:
        assert code in select["description"], code


def test_with_the_demo_mapping_off_discovery_offers_no_imaging_codes(client: TestClient) -> None:
    for service in client.get("/cds-services").json()["services"]:
        assert "72148" not in service["description"]
