"""Saved cases for the what-if preview: shipped in the package, read from the scenario files, uploaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds_service.admin.what_if import (
    PACKAGE_CASES,
    CardView,
    CaseError,
    case_from_document,
    compare,
    saved_cases,
    uploaded_cases,
)
from cds_service.hooks.discovery import prefetch_keys
from fhir_mappings.codesets import default_codesets
from tests.scenarios.test_clinical_scenarios import Scenario, hook_request

KEYS = prefetch_keys(default_codesets())
SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios" / "cases"


def test_the_package_ships_saved_cases_that_are_hook_requests() -> None:
    files = sorted(PACKAGE_CASES.glob("*.json"))
    assert len(files) >= 5
    for path in files:
        body = json.loads(path.read_text(encoding="utf-8"))
        assert body["hook"] in ("order-select", "order-sign")
        assert "fhirAuthorization" not in body


def test_saved_cases_are_the_package_cases_then_those_of_the_configured_folder() -> None:
    cases = saved_cases(KEYS, str(SCENARIO_DIR))
    sources = [c.source for c in cases]
    assert sources.count("package") == len(list(PACKAGE_CASES.glob("*.json")))
    assert sources.count("scenario") == len(list(SCENARIO_DIR.glob("*.json")))
    assert sources == sorted(sources)  # package first


def test_without_a_configured_folder_only_the_package_cases_are_offered() -> None:
    cases = saved_cases(KEYS)
    assert {c.source for c in cases} == {"package"}


def test_a_scenario_becomes_the_same_request_the_scenario_test_sends() -> None:
    path = SCENARIO_DIR / "copd-j44-9-three-levels.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    case = case_from_document(path.stem, body, "scenario", KEYS)
    assert case.request == hook_request(Scenario(path.stem, body))
    assert case.title == body["description"]


def test_an_extra_folder_of_cases_can_be_configured(tmp_path: Path) -> None:
    request = json.loads((PACKAGE_CASES / "apixaban-active.json").read_text(encoding="utf-8"))
    (tmp_path / "site-case.json").write_text(json.dumps(request), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    cases = saved_cases(KEYS, str(tmp_path))
    assert [c.id for c in cases if c.source == "scenario"] == ["scenario/site-case"]


def test_uploads_drop_the_fhir_server_and_its_token_and_report_what_is_refused() -> None:
    request = json.loads((PACKAGE_CASES / "apixaban-active.json").read_text(encoding="utf-8"))
    request["fhirServer"] = "https://ehr.example.org/r4"
    request["fhirAuthorization"] = {"access_token": "secret", "token_type": "Bearer"}
    cases, problems = uploaded_cases(
        [("two.json", json.dumps([request, request]).encode()), ("bad.json", b'{"hook": "patient-view"}')],
        KEYS,
    )
    assert [c.id for c in cases] == ["upload/two-1", "upload/two-2"]
    assert all("fhirServer" not in c.request and "fhirAuthorization" not in c.request for c in cases)
    assert all(c.as_of is None for c in cases)
    assert problems == ["bad: hook must be one of order-select, order-sign, not 'patient-view'"]


def test_a_document_that_is_no_case_is_refused() -> None:
    with pytest.raises(CaseError, match="neither a hook request"):
        case_from_document("x", {"hook": "order-select"}, "upload", KEYS)


def test_cards_are_compared_by_rule() -> None:
    warning = CardView("inr-high", "warning", "INR 1.6", ())
    critical = CardView("inr-high", "critical", "INR 1.6", ())
    info = CardView("eligibility", "info", "ok", ())
    changes = compare([warning, info], [critical])
    assert [(c.kind, c.rule) for c in changes] == [("vanishes", "eligibility"), ("changes", "inr-high")]
    assert compare([warning], [warning]) == ()
