"""Repeated calls: an exact repeat (apart from hookInstance and token) is answered as the first was, with
new ids and its own evaluation row; anything the decision rests on that differs is decided afresh."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from cds_service.hooks import flow as hook_flow
from cds_service.storage.tables import CardRow, EvaluationRow, FeedbackRow
from rules.thresholds import DEFAULT_THRESHOLDS
from tests.scenarios.test_clinical_scenarios import SERVICE_PATHS, all_scenarios, hook_request
from tests.support.app import FIXED_NOW, SettableClock, client_for, make_app
from tests.support.hook_requests import fhir_authorization

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SCENARIOS = all_scenarios()


def repeats() -> float:
    return REGISTRY.get_sample_value("vcds_answer_cache_total", {"result": "hit"}) or 0.0


def again(body: dict[str, Any]) -> dict[str, Any]:
    """The same call, as an EHR sends it again: a new hookInstance (and a fresh token, if it sends one)."""
    repeat = copy.deepcopy(body)
    repeat["hookInstance"] = str(uuid.uuid4())
    if "fhirAuthorization" in repeat:
        repeat["fhirAuthorization"] = fhir_authorization(f"token-{uuid.uuid4()}")
    return repeat


def ids_in(answer: dict[str, Any]) -> list[str]:
    return UUID.findall(repr(answer))


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def app(tmp_path: Path, clock: SettableClock) -> FastAPI:
    return make_app(tmp_path, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return client_for(app)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_repeated_call_gets_the_same_answer_with_new_ids(client: TestClient, scenario: Any) -> None:
    body = hook_request(scenario)
    path = SERVICE_PATHS[scenario.hook]
    first = client.post(path, json=body)
    before = repeats()
    second = client.post(path, json=again(body))
    assert (first.status_code, second.status_code) == (200, 200)
    one, two = first.json(), second.json()
    assert UUID.sub("<id>", repr(two)) == UUID.sub("<id>", repr(one))
    assert not set(ids_in(one)) & set(ids_in(two))
    assert len(set(ids_in(two))) == len(set(ids_in(one)))
    assert repeats() - before == (1 if one["cards"] else 0)  # "not our order" is not cached: it is free


def test_each_repeat_has_its_own_row_and_feedback_finds_it(app: FastAPI, client: TestClient) -> None:
    body = _copd_body()
    path = SERVICE_PATHS["order-select"]
    repeat = again(body)
    first = client.post(path, json=body).json()
    second = client.post(path, json=repeat).json()
    card = next(c for c in second["cards"] if c["source"]["topic"]["code"] == "copd-multilevel")
    feedback = {
        "feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
        ]
    }
    assert client.post(path + "/feedback", json=feedback).json()["stored"] == 1
    with app.state.database.session() as session:
        rows = {row.hook_instance: row for row in session.scalars(select(EvaluationRow))}
        assert set(rows) == {body["hookInstance"], repeat["hookInstance"]}
        first_cards = set(
            session.scalars(
                select(CardRow.uuid).where(CardRow.evaluation_id == rows[body["hookInstance"]].id)
            )
        )
        second_cards = set(
            session.scalars(
                select(CardRow.uuid).where(CardRow.evaluation_id == rows[repeat["hookInstance"]].id)
            )
        )
        assert first_cards == {c["uuid"] for c in first["cards"]}
        assert second_cards == {c["uuid"] for c in second["cards"]}
        assert rows[repeat["hookInstance"]].outcomes == [
            {**o, "card": c["uuid"]}
            for o, c in zip(rows[body["hookInstance"]].outcomes, second["cards"], strict=True)
        ]
        linked = session.scalars(select(FeedbackRow)).one()
        assert linked.evaluation_id == rows[repeat["hookInstance"]].id


def _copd_body() -> dict[str, Any]:
    """A request of its own to change: the scenarios' requests share their parts with the cached scenario."""
    return copy.deepcopy(hook_request(next(s for s in SCENARIOS if s.name == "copd-j44-9-three-levels")))


def test_a_fresh_access_token_is_still_a_repeat(client: TestClient) -> None:
    body = _copd_body()
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # named, but every key is prefetched: nothing fetched
    body["fhirAuthorization"] = fhir_authorization("first-token")
    path = SERVICE_PATHS["order-select"]
    client.post(path, json=body)
    before = repeats()
    assert client.post(path, json=again(body)).status_code == 200
    assert repeats() - before == 1


def test_a_new_thresholds_version_is_decided_afresh(app: FastAPI, client: TestClient) -> None:
    body = _copd_body()
    path = SERVICE_PATHS["order-select"]
    assert "copd-multilevel" in {
        c["source"]["topic"]["code"] for c in client.post(path, json=body).json()["cards"]
    }
    looser = DEFAULT_THRESHOLDS.model_copy(update={"max_levels_severe_lung": 3})
    app.state.flow.thresholds = lambda: (looser, 2)
    before = repeats()
    cards = client.post(path, json=again(body)).json()["cards"]
    assert repeats() == before
    assert "copd-multilevel" not in {c["source"]["topic"]["code"] for c in cards}
    assert {c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in cards} == {2}


def test_the_next_day_is_decided_afresh(client: TestClient, clock: SettableClock) -> None:
    body = _copd_body()
    path = SERVICE_PATHS["order-select"]
    client.post(path, json=body)
    clock.now = FIXED_NOW + timedelta(days=1)
    before = repeats()
    client.post(path, json=again(body))
    assert repeats() == before


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["context"].update(userId="Practitioner/another"),
        lambda b: b["context"]["draftOrders"]["entry"][0]["resource"].update(occurrenceDateTime="2026-12-24"),
        lambda b: b["prefetch"].update(patient={**b["prefetch"]["patient"], "birthDate": "1950-01-01"}),
    ],
    ids=["another user", "order edited", "prefetch changed"],
)
def test_any_other_difference_is_decided_afresh(client: TestClient, change: Any) -> None:
    body = _copd_body()
    path = SERVICE_PATHS["order-select"]
    client.post(path, json=body)
    changed = again(body)
    change(changed)
    before = repeats()
    assert client.post(path, json=changed).status_code == 200
    assert repeats() == before


def test_a_call_that_must_fetch_is_never_answered_from_memory(client: TestClient) -> None:
    body = _copd_body()
    del body["prefetch"]["observations"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: the fetch fails, the rest decides
    path = SERVICE_PATHS["order-select"]
    before = repeats()
    for _ in range(2):
        assert client.post(path, json=again(body)).status_code == 200
    assert repeats() == before


def test_zero_entries_turn_the_answer_cache_off(tmp_path: Path) -> None:
    client = client_for(make_app(tmp_path, answer_cache_entries=0))
    body = _copd_body()
    before = repeats()
    for _ in range(2):
        client.post(SERVICE_PATHS["order-select"], json=again(body))
    assert repeats() == before


def test_an_order_that_is_not_ours_is_answered_without_digesting_anything(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every lab, drug and imaging order fires order-select: those calls must stay free."""

    def never(*_: Any) -> bytes:
        raise AssertionError("digested the prefetch of a call that is not about our order")

    monkeypatch.setattr(hook_flow, "prefetch_digest", never)
    body = _copd_body()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["code"] = {"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "Chest CT"}]}
    for _ in range(2):
        response = client.post(SERVICE_PATHS["order-select"], json=again(body))
        assert response.json() == {"cards": []}
