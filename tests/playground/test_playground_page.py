"""The playground page and its helper API, in-process (the browser test drives the page itself)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.playground import demo
from cds_service.routes.playground import playground_enabled
from cds_service.settings import Settings, SettingsError, load_settings
from tests.support.app import client_for, make_app

BUILD = "/playground/api/request"


def config_of(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="playground-config">(.*?)</script>', page, re.S)
    assert found
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def test_the_page_lists_the_demo_patients_and_loads_only_its_own_files(client: TestClient) -> None:
    response = client.get("/playground")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    page = response.text
    config = config_of(page)
    assert [p["id"] for p in config["patients"]] == list(demo.DEMO_PATIENTS_BY_ID)
    assert config["services"] == {
        "order-select": "vertebral-augmentation-select",
        "order-sign": "vertebral-augmentation-sign",
    }
    assert config["jwtRequired"] is False
    for patient in demo.DEMO_PATIENTS:
        assert f'<option value="{patient.id}">' in page
    assert 'id="jwt-notice"' not in page
    assert re.findall(r'<script src="([^"]+)"', page) == ["/playground/static/playground.js"]
    assert "onclick" not in page  # nothing inline for the CSP to block
    assert 'style="' not in page
    for asset in ("/playground/static/playground.js", "/playground/static/playground.css"):
        assert client.get(asset).status_code == 200


def test_a_demo_bundle_is_served_with_its_dates_for_today(client: TestClient) -> None:
    response = client.get("/playground/api/patients/copd-multilevel")
    assert response.status_code == 200
    assert response.json() == demo.demo_patient("copd-multilevel").bundle(demo.DEMO_ANCHOR)
    assert client.get("/playground/api/patients/nobody").status_code == 404
    listed = client.get("/playground/api/patients").json()["patients"]
    assert listed[2]["order"] == {
        "procedure": "kyphoplasty",
        "levels": ["T11", "T12", "L1"],
        "planned": "2026-12-05",
    }


def test_the_built_request_is_what_the_hook_endpoint_answers(client: TestClient) -> None:
    bundle = client.get("/playground/api/patients/copd-multilevel").json()
    order = {"procedure": "kyphoplasty", "levels": "T11-L1", "planned": "2026-12-05"}
    built = client.post(BUILD, json={"bundle": bundle, "order": order, "hook": "order-select"})
    assert built.status_code == 200, built.text
    body = built.json()
    assert body["path"] == "/cds-services/vertebral-augmentation-select"
    assert body["patient"] == {
        "id": "dorothy-kaminski",
        "name": "Dorothy Kaminski",
        "gender": "female",
        "birthDate": "1952-01-23",
    }
    assert body["skipped"] == {}
    answer = client.post(body["path"], json=body["request"])
    assert answer.status_code == 200
    assert "copd-multilevel" in [c["source"]["topic"]["code"] for c in answer.json()["cards"]]


def test_order_sign_goes_to_the_sign_service(client: TestClient) -> None:
    bundle = client.get("/playground/api/patients/myeloma").json()
    order = {"procedure": "vertebroplasty", "levels": ["L1"], "planned": None}
    body = client.post(BUILD, json={"bundle": bundle, "order": order, "hook": "order-sign"}).json()
    assert body["service"] == "vertebral-augmentation-sign"
    assert "selections" not in body["request"]["context"]
    answer = client.post(body["path"], json=body["request"]).json()
    assert answer["systemActions"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"bundle": {"resourceType": "Patient"}, "order": {"procedure": "kyphoplasty", "levels": "L1"}},
            "Bundle",
        ),
        (
            {"bundle": {"resourceType": "Bundle"}, "order": {"procedure": "kyphoplasty", "levels": ""}},
            "level",
        ),
        (
            {"bundle": {"resourceType": "Bundle"}, "order": {"procedure": "kyphoplasty", "levels": "C4"}},
            "thoracic",
        ),
        (
            {"bundle": {"resourceType": "Bundle"}, "order": {"procedure": "biopsy", "levels": "L1"}},
            "kyphoplasty",
        ),
        (
            {
                "bundle": {"resourceType": "Bundle"},
                "order": {"procedure": "kyphoplasty", "levels": "L1", "planned": "soon"},
            },
            "date",
        ),
        (
            {
                "bundle": {"resourceType": "Bundle"},
                "order": {"procedure": "kyphoplasty", "levels": "L1"},
                "hook": "x",
            },
            "hook",
        ),
    ],
)
def test_what_cannot_make_a_request_is_a_400_that_says_why(
    client: TestClient, payload: dict[str, Any], message: str
) -> None:
    response = client.post(BUILD, json=payload)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert message in outcome["issue"][0]["diagnostics"]


def test_the_helper_api_keeps_the_request_size_limit(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path, max_request_bytes=1_000)) as client:
        response = client.post(
            BUILD, content=b"{" + b" " * 2_000 + b"}", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


def test_the_sandbox_profile_page_says_the_playground_sends_no_jwt(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path, profile="sandbox")) as client:
        page = client.get("/playground").text
    assert 'id="jwt-notice"' in page
    assert config_of(page)["jwtRequired"] is True


@pytest.mark.parametrize(("setting", "served"), [(None, True), (True, True), (False, False)])
def test_the_playground_is_on_in_dev_unless_switched_off(
    tmp_path: Path, setting: bool | None, served: bool
) -> None:
    with client_for(make_app(tmp_path, playground_enabled=setting)) as client:
        assert (client.get("/playground").status_code == 200) is served
        assert (client.get("/playground/static/playground.js").status_code == 200) is served


def test_production_leaves_the_playground_off_and_refuses_to_turn_it_on() -> None:
    production: dict[str, Any] = {
        "profile": "production",
        "public_base_url": "https://cds.example.org",
        "patient_hash_key": "k" * 32,
        "allowed_fhir_servers": ["https://fhir.example.org/r4"],
        "trusted_issuers": [{"iss": "https://ehr.example.org", "jku": ["https://ehr.example.org/jwks.json"]}],
        "admin_token": "a" * 32,
        "trusted_proxies": ["10.0.0.5"],
    }
    assert playground_enabled(Settings(**production)) is False
    with pytest.raises(SettingsError, match="VCDS_PLAYGROUND_ENABLED"):
        load_settings(**production, playground_enabled=True)
