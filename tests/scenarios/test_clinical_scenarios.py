"""Clinical scenarios, table-driven: a small FHIR fixture goes in through the real HTTP endpoint, and
exactly the expected cards, indicators and eligibility outcomes come out.

Each file in `cases/` is one scenario (see `README.md`). Its `resources` become the hook's `prefetch`,
grouped into the service's prefetch keys; every key is sent (an empty Bundle when there is nothing),
so no `data-unavailable` card appears unless a scenario asks for one. There is no `fhirServer`.
The clock is fixed at 2026-11-21T09:00Z and card ids count up from
`00000000-0000-4000-8000-000000000001`.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from rules.facts import DraftOrder
from rules.thresholds import RULE_IDS
from tests.support.app import client_for, make_app

CASES_DIR = Path(__file__).resolve().parent / "cases"
SERVICE_PATHS = {
    "order-select": "/cds-services/vertebral-augmentation-select",
    "order-sign": "/cds-services/vertebral-augmentation-sign",
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "gender": "female",
    "birthDate": "1946-04-12",
}
USER = "Practitioner/prac-1"
PREFETCH_KEY_OF: dict[str, str] = {
    "Condition": "conditions",
    "Observation": "observations",
    "MedicationRequest": "medicationRequests",
    "Medication": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "AllergyIntolerance": "allergies",
    "DiagnosticReport": "imagingReports",
    "ImagingStudy": "imagingStudies",
    "Procedure": "imagingProcedures",
}
SEARCH_KEYS = tuple(dict.fromkeys(PREFETCH_KEY_OF.values()))
SCENARIO_KEYS = frozenset(
    {
        "description",
        "hook",
        "draftOrders",
        "selections",
        "resources",
        "encounterId",
        "prefetch",
        "thresholds",
        "settings",
        "xfail",
        "expect",
    }
)
EXPECT_KEYS = frozenset(
    {
        "cards",
        "rules",
        "absent",
        "eligibility",
        "levels",
        "procedure",
        "summaryIncludes",
        "summaryExcludes",
        "detailIncludes",
        "detailExcludes",
        "sourceIncludes",
        "suggestions",
        "systemActions",
    }
)
CRITERIA = frozenset(
    {"indication", "imaging", "pain", "conservative-care", "fracture-age", "kyphoplasty-timing"}
)
EXTENSION_KEY = "vertebral-cds"

# Each rule, with each indicator it can take, fires in at least one (non-xfail) scenario.
REQUIRED_OUTCOMES = frozenset(
    {
        ("anticoagulant-active", "warning"),
        ("anticoagulant-active", "critical"),
        ("antiplatelet-active", "warning"),
        ("antiplatelet-active", "critical"),
        ("multiple-antithrombotics", "warning"),
        ("multiple-antithrombotics", "critical"),
        ("antiplatelet-active", "info"),
        ("inr-high", "warning"),
        ("inr-high", "critical"),
        ("platelets-low", "critical"),
        ("coagulation-labs-missing", "info"),
        ("coagulation-labs-missing", "warning"),
        ("bleeding-disorder", "warning"),
        ("spinal-infection", "critical"),
        ("systemic-infection", "critical"),
        ("pregnancy", "critical"),
        ("neurologic-compromise", "warning"),
        ("cement-contrast-allergy", "warning"),
        ("too-many-levels", "warning"),
        ("copd-multilevel", "warning"),
        ("upper-thoracic-level", "info"),
        ("level-count-not-stated", "info"),
        ("level-count-not-stated", "warning"),
        ("eligibility", "info"),
        ("eligibility", "warning"),
        ("osteoporosis-follow-up", "info"),
        ("neoplastic-indication", "info"),
        ("data-unavailable", "warning"),
        ("other-patient-data", "critical"),
        ("patient-deceased", "critical"),
    }
)


@dataclass(frozen=True)
class Scenario:
    name: str
    body: dict[str, Any]

    @property
    def hook(self) -> str:
        return str(self.body["hook"])

    @property
    def expect(self) -> dict[str, Any]:
        expect: dict[str, Any] = self.body["expect"]
        return expect

    @property
    def selections(self) -> list[str] | None:
        return self.body.get("selections") if self.hook == "order-select" else None

    @property
    def xfail(self) -> str | None:
        return self.body.get("xfail")


@cache
def all_scenarios() -> tuple[Scenario, ...]:
    return tuple(
        Scenario(path.stem, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(CASES_DIR.glob("*.json"))
    )


def scenario(name: str) -> Scenario:
    return next(s for s in all_scenarios() if s.name == name)


def _params(*, honour_xfail: bool) -> list[Any]:
    params = []
    for s in all_scenarios():
        marks = (
            [pytest.mark.xfail(strict=True, reason=s.xfail)] if honour_xfail and s.xfail is not None else []
        )
        params.append(pytest.param(s, id=s.name, marks=marks))
    return params


# --------------------------------------------------------------------------- the request


def _search_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle


def build_prefetch(s: Scenario) -> dict[str, Any]:
    """The scenario's resources grouped into the service's prefetch keys; every key is present."""
    grouped: dict[str, list[dict[str, Any]]] = {key: [] for key in SEARCH_KEYS}
    patient = PATIENT
    encounter = None
    for resource in s.body.get("resources", []):
        kind = resource["resourceType"]
        if kind == "Patient":
            patient = resource
        elif kind == "Encounter":
            encounter = resource
        else:
            grouped[PREFETCH_KEY_OF[kind]].append(resource)
    prefetch: dict[str, Any] = {"patient": patient}
    prefetch.update({key: _search_bundle(resources) for key, resources in grouped.items()})
    if s.body.get("encounterId"):
        assert encounter is not None, "a scenario with encounterId needs its Encounter resource"
        prefetch["encounter"] = encounter
    prefetch.update(s.body.get("prefetch", {}))
    return prefetch


def hook_request(s: Scenario) -> dict[str, Any]:
    """The scenario's hook request, a copy of its own: a test may change it without touching the
    scenario (which is cached and shared by every test that reads it)."""
    return copy.deepcopy(_hook_request(s))


def _hook_request(s: Scenario) -> dict[str, Any]:
    context: dict[str, Any] = {
        "userId": USER,
        "patientId": build_prefetch(s)["patient"]["id"],
        "draftOrders": s.body["draftOrders"],
    }
    if s.selections is not None:
        context["selections"] = s.selections
    if s.body.get("encounterId"):
        context["encounterId"] = s.body["encounterId"]
    return {
        "hookInstance": str(uuid.uuid5(uuid.NAMESPACE_URL, f"vertebral-cds/scenario/{s.name}")),
        "hook": s.hook,
        "context": context,
        "prefetch": build_prefetch(s),
    }


def run_scenario(s: Scenario, tmp_path: Path) -> dict[str, Any]:
    """POST the scenario to its hook service on a fresh app (fixed clock, counting ids)."""
    settings: dict[str, Any] = dict(s.body.get("settings", {}))
    if "thresholds" in s.body:
        thresholds_file = tmp_path / "thresholds.yaml"
        thresholds_file.write_text(json.dumps(s.body["thresholds"]), encoding="utf-8")  # JSON is YAML
        settings["thresholds_file"] = str(thresholds_file)
    app = make_app(tmp_path, fixed_ids=True, **settings)
    with client_for(app) as client:
        response = client.post(SERVICE_PATHS[s.hook], json=hook_request(s))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def draft_order(s: Scenario) -> DraftOrder | None:
    snomed = frozenset(s.body.get("thresholds", {}).get("procedure_snomed_codes", ()))
    demo = bool(s.body.get("settings", {}).get("demo_imaging_stand_in", False))
    return read_draft_order(s.body["draftOrders"], s.selections, default_codesets(), snomed, demo).order


def cards_by_rule(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cards = {card["source"]["topic"]["code"]: card for card in response["cards"]}
    assert len(cards) == len(response["cards"]), "one card per rule"
    return cards


def criteria_outcomes(card: dict[str, Any]) -> dict[str, str]:
    return {f["criterion"]: f["outcome"] for f in card["extension"][EXTENSION_KEY]["findings"]}


# --------------------------------------------------------------------------- the scenarios


@pytest.mark.parametrize("s", _params(honour_xfail=True))
def test_scenario_gives_exactly_the_expected_cards(s: Scenario, tmp_path: Path) -> None:
    expect = s.expect
    order = draft_order(s)
    response = run_scenario(s, tmp_path)
    if "cards" in expect:
        assert response == {"cards": expect["cards"]}
        if expect["cards"] == []:
            assert order is None, "no cards because there is no vertebral augmentation order to guide"
    cards = cards_by_rule(response)

    if "rules" in expect:
        assert {rule: card["indicator"] for rule, card in cards.items()} == expect["rules"]
    for rule in expect.get("absent", ()):
        assert rule not in cards, f"{rule} should not fire"

    if "eligibility" in expect:
        outcomes = criteria_outcomes(cards["eligibility"])
        assert {c: outcomes.get(c, "(absent)") for c in expect["eligibility"]} == expect["eligibility"]
        assert order is not None
        assert ("kyphoplasty-timing" in outcomes) == (order.procedure == "kyphoplasty")

    for rule, words in expect.get("summaryIncludes", {}).items():
        for word in words:
            assert word.lower() in cards[rule]["summary"].lower(), (rule, word, cards[rule]["summary"])
    for rule, words in expect.get("summaryExcludes", {}).items():
        for word in words:
            assert word.lower() not in cards[rule]["summary"].lower(), (rule, word, cards[rule]["summary"])
    for rule, words in expect.get("detailIncludes", {}).items():
        for word in words:
            assert word.lower() in cards[rule]["detail"].lower(), (rule, word)
    for rule, words in expect.get("detailExcludes", {}).items():
        for word in words:
            assert word.lower() not in cards[rule]["detail"].lower(), (rule, word)
    for rule, words in expect.get("sourceIncludes", {}).items():
        for word in words:
            assert word.lower() in cards[rule]["source"]["label"].lower(), (rule, word, cards[rule]["source"])
    for rule, labels in expect.get("suggestions", {}).items():
        assert [sg["label"] for sg in cards[rule].get("suggestions", ())] == labels

    if "systemActions" in expect:
        assert len(response.get("systemActions", ())) == expect["systemActions"]

    if "levels" in expect:
        assert order is not None
        assert order.level_count == expect["levels"]
        for rule in ("too-many-levels", "copd-multilevel"):  # the count as the endpoint saw it
            if rule in cards:
                assert f"{expect['levels']} levels" in cards[rule]["summary"]
    if "procedure" in expect:
        assert order is not None
        assert order.procedure == expect["procedure"]


# --------------------------------------------------------------------------- every response


def _empty_values(value: Any, path: str = "$") -> list[str]:
    """Paths of null and empty values ("", [], {}) — the spec forbids them in a response."""
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empty_values(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_values(v, f"{path}[{i}]")]
    return []


_MODELS: dict[str, Any] = {}


def validate_r4b(resource: dict[str, Any]) -> None:
    """Raise pydantic's ValidationError when the resource is not valid FHIR R4 (fhir.resources.R4B)."""
    kind = resource["resourceType"]
    if kind not in _MODELS:
        _MODELS[kind] = getattr(import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)
    _MODELS[kind].model_validate(resource)


@pytest.mark.parametrize("s", _params(honour_xfail=False))
def test_response_is_well_formed(s: Scenario, tmp_path: Path) -> None:
    """Summaries ≤ 139 characters, no null or empty values, known rule ids, suggestions complete."""
    response = run_scenario(s, tmp_path)
    assert [p for k, v in response.items() if k != "cards" for p in _empty_values(v, f"$.{k}")] == []
    ids: list[str] = []
    for index, card in enumerate(response["cards"]):
        assert _empty_values(card, f"$.cards[{index}]") == []
        assert 0 < len(card["summary"]) <= 139, card["summary"]
        assert card["source"]["topic"]["code"] in RULE_IDS
        assert card["source"]["label"]
        assert card["source"]["url"].startswith("https://")
        ids.append(card["uuid"])
        suggestions = card.get("suggestions", [])
        if suggestions:
            assert card["selectionBehavior"] in ("at-most-one", "any")
        for suggestion in suggestions:
            ids.append(suggestion["uuid"])
            assert suggestion["actions"], suggestion["label"]
            for action in suggestion["actions"]:
                if action["type"] == "delete":
                    assert action["resourceId"].startswith("ServiceRequest/")
                else:
                    assert action["resource"]["resourceType"] == "ServiceRequest"
    assert len(ids) == len(set(ids)), "card and suggestion uuids are unique"


@pytest.mark.parametrize("s", _params(honour_xfail=False))
def test_every_suggested_resource_is_valid_fhir_r4(s: Scenario, tmp_path: Path) -> None:
    """Suggestion and systemAction resources validate with fhir.resources.R4B and belong to the patient."""
    response = run_scenario(s, tmp_path)
    actions = [
        action
        for card in response["cards"]
        for suggestion in card.get("suggestions", ())
        for action in suggestion["actions"]
    ]
    actions += response.get("systemActions", [])
    for action in actions:
        if "resource" not in action:
            continue
        resource = action["resource"]
        try:
            validate_r4b(resource)
        except ValidationError as error:  # pragma: no cover - the message is the point
            pytest.fail(f"{action['description']}: invalid R4 {resource['resourceType']}: {error}")
        assert resource["subject"] == {"reference": f"Patient/{PATIENT['id']}"}
        if action["type"] == "create":
            assert resource["status"] == "draft"
            assert resource["intent"] == "order"
            assert resource["requester"] == {"reference": USER}


# --------------------------------------------------------------------------- the scenario files


@pytest.mark.parametrize("s", _params(honour_xfail=False))
def test_scenario_file_follows_the_format(s: Scenario) -> None:
    assert set(s.body) <= SCENARIO_KEYS, set(s.body) - SCENARIO_KEYS
    assert {"description", "hook", "draftOrders", "resources", "expect"} <= set(s.body)
    assert s.hook in SERVICE_PATHS
    assert s.body["description"].strip()
    assert (s.hook == "order-select") == ("selections" in s.body)
    assert s.xfail is None or s.xfail.startswith("BUG: ")
    expect = s.expect
    assert set(expect) <= EXPECT_KEYS, set(expect) - EXPECT_KEYS
    assert ("cards" in expect) != ("rules" in expect), "say either the exact rules or the exact cards"
    assert set(expect.get("rules", {})) <= set(RULE_IDS)
    assert set(expect.get("absent", ())) <= set(RULE_IDS) - set(expect.get("rules", {}))
    assert set(expect.get("rules", {}).values()) <= {"info", "warning", "critical"}
    assert set(expect.get("eligibility", {})) <= CRITERIA
    assert set(expect.get("eligibility", {}).values()) <= {"met", "not-met", "unknown", "not-applicable"}
    for key in (
        "summaryIncludes",
        "summaryExcludes",
        "detailIncludes",
        "detailExcludes",
        "sourceIncludes",
        "suggestions",
    ):
        assert set(expect.get(key, {})) <= set(expect.get("rules", {})), key


@pytest.mark.parametrize("s", _params(honour_xfail=False))
def test_fixture_resources_are_valid_fhir_r4(s: Scenario) -> None:
    """An invalid fixture resource would be skipped by the service and the scenario would prove nothing."""
    for resource in [*s.body["resources"], *(e["resource"] for e in s.body["draftOrders"]["entry"])]:
        validate_r4b(resource)
    for key, value in s.body.get("prefetch", {}).items():
        assert key in (*SEARCH_KEYS, "patient", "encounter")
        if value is not None:
            validate_r4b(value)


def test_there_are_at_least_forty_scenarios() -> None:
    assert len(all_scenarios()) >= 40


def test_every_rule_fires_with_each_of_its_indicators_somewhere() -> None:
    fired = {
        (rule, indicator)
        for s in all_scenarios()
        if s.xfail is None
        for rule, indicator in s.expect.get("rules", {}).items()
    }
    assert REQUIRED_OUTCOMES - fired == set()
    assert {rule for rule, _ in fired} == set(RULE_IDS)


def test_every_criterion_outcome_is_exercised() -> None:
    seen = {
        (criterion, outcome)
        for s in all_scenarios()
        if s.xfail is None
        for criterion, outcome in s.expect.get("eligibility", {}).items()
    }
    wanted = {(c, o) for c in CRITERIA for o in ("met", "not-met")} | {("pain", "unknown")}
    assert wanted - seen == set()
