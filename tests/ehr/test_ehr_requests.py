"""Hook requests as Epic, Oracle Health and the Da Vinci CRD request generator send them (fixtures/, built by
build_fixtures.py from the vendors' documentation and public payloads, each citing its sources), through the
real endpoint: each must be answered 200 with exactly the cards it names (rule → indicator), none of those it
says must be absent, and with the data arriving as it says (read back from the stored evaluation row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.storage.tables import EvaluationRow
from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from testing.fhir_server import FhirServer
from tests.support.app import client_for, make_app
from tests.support.jwt_keys import JwksServer, jwks, new_key, sign

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = "http://testserver"
ISS = "http://localhost:8080/test-ehr/r4"  # the generator's `iss` is its EHR's FHIR base


def load(name: str) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return fixture


NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
PREFETCH_ONLY = [n for n in NAMES if "fhirServerResources" not in load(n)]
WITH_SERVER = [n for n in NAMES if "fhirServerResources" in load(n)]


def stored_data(app: FastAPI, hook_instance: str) -> dict[str, Any]:
    app.state.flow.flush_records()
    with app.state.database.engine.connect() as connection:
        rows = connection.execute(
            select(EvaluationRow.data).where(EvaluationRow.hook_instance == hook_instance)
        ).scalars()
        found = list(rows)
    assert len(found) == 1
    data: dict[str, Any] = found[0]
    return data


def check(fixture: dict[str, Any], body: dict[str, Any], response: Any, app: FastAPI) -> None:
    assert response.status_code == 200, response.text
    expect = fixture["expect"]
    cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    assert {rule: c["indicator"] for rule, c in cards.items()} == expect["rules"]
    assert not set(expect.get("absent", ())) & set(cards)
    for rule, words in expect.get("summaryIncludes", {}).items():
        for word in words:
            assert word.lower() in cards[rule]["summary"].lower(), (rule, word, cards[rule]["summary"])
    if "levels" in expect:
        context = body["context"]
        selections = context.get("selections") if body["hook"] == "order-select" else None
        reading = read_draft_order(context["draftOrders"], selections, default_codesets())
        assert reading.order is not None
        assert reading.order.level_count == expect["levels"]
    data = stored_data(app, body["hookInstance"])
    for field, keys in expect.get("data", {}).items():
        assert sorted(data[field]) == sorted(keys), (field, data[field])


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient]]:
    application = make_app(tmp_path)
    with client_for(application) as client:
        yield application, client


@pytest.mark.parametrize("name", PREFETCH_ONLY)
def test_ehr_request_gives_its_cards(app: tuple[FastAPI, TestClient], name: str) -> None:
    fixture = load(name)
    application, client = app
    body = fixture["request"]
    response = client.post(f"/cds-services/{fixture['service']}", json=body)
    check(fixture, body, response, application)


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_cites_its_sources(name: str) -> None:
    fixture = load(name)
    assert fixture["sources"]
    assert all(s.startswith("https://") for s in fixture["sources"])
    assert "confirmed" in fixture["description"].lower()
    assert "inferred" in fixture["description"].lower()


def test_epic_ids_are_longer_than_fhir_allows() -> None:
    """The fixtures carry Epic's real lengths: were they cut to 64, the tests would prove nothing."""
    context = load("epic-order-select-long-ids")["request"]["context"]
    lengths = [len(s.split("/", 1)[1]) for s in context["selections"]]
    lengths += [len(e["resource"]["id"]) for e in context["draftOrders"]["entry"]]
    assert min(lengths) > 190
    assert max(lengths) <= 216


@pytest.mark.parametrize("length", [257, 300])
def test_an_id_past_the_bound_is_still_refused(app: tuple[FastAPI, TestClient], length: int) -> None:
    fixture = load("epic-order-select-long-ids")
    body = json.loads(json.dumps(fixture["request"]))
    body["context"]["selections"] = ["ServiceRequest/" + "a" * length]
    response = app[1].post(f"/cds-services/{fixture['service']}", json=body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_real_error_outcome_under_a_key_stays_an_error(app: tuple[FastAPI, TestClient]) -> None:
    """A 4101 bundle is no data; an error OperationOutcome is still a failure said on a card."""
    fixture = load("epic-prefetch-display-only-4101")
    body = json.loads(json.dumps(fixture["request"]))
    outcome = body["prefetch"]["allergies"]["entry"][0]["resource"]
    outcome["issue"][0]["severity"] = "error"
    response = app[1].post(f"/cds-services/{fixture['service']}", json=body)
    assert response.status_code == 200
    cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    assert "data-unavailable" in cards
    assert "allergies" in cards["data-unavailable"]["summary"].lower()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


@pytest.mark.parametrize("name", WITH_SERVER)
def test_ehr_request_with_fhir_server_and_jwt(
    tmp_path: Path, fhir_server: FhirServer, jwks_server: JwksServer, name: str
) -> None:
    fixture = load(name)
    for resource in fixture["fhirServerResources"]:
        fhir_server.put(resource)
    body = json.loads(json.dumps(fixture["request"]).replace("{{fhirServer}}", fhir_server.base_url))
    spec = fixture["jwt"]
    key = new_key(spec["alg"])
    jwks_server.publish("generator", jwks(key))
    application = make_app(
        tmp_path,
        jwt_required=True,
        trusted_issuers=[
            {
                "iss": ISS,
                "jku": [jwks_server.url("generator")],
                "max_lifetime_seconds": spec["lifetime_seconds"],
            }
        ],
    )
    path = f"/cds-services/{fixture['service']}"
    token = sign(
        key,
        iss=ISS,
        aud=BASE + path,
        jku=jwks_server.url("generator"),
        lifetime_seconds=spec["lifetime_seconds"],
        drop=tuple(spec["drop"]),
    )
    with client_for(application) as client:
        response = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        check(fixture, body, response, application)
