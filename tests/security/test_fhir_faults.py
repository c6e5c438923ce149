"""Failing FHIR servers never hang the service nor give a 500.

Against a misbehaving stand-in on 127.0.0.1 (slow, 500, 401, malformed JSON, wrong resource types,
endless `next` links, redirects, huge or dripping bodies, hang-ups, connection refused) and the real
FHIR server (wrong token): with nothing prefetched the answer is 412 with an OperationOutcome (or 200
when something usable arrived); with part of the data prefetched, 200 with a `data-unavailable`
card. Every answer comes within the fetch deadline plus a margin.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from testing.fhir_server import FhirServer, free_port
from tests.conftest import INTEGRATION_TOKEN
from tests.support.app import client_for, make_app, sample
from tests.support.bad_fhir_server import MODES, BadFhirServer
from tests.support.hook_requests import active_condition, augmentation_order, order_select

SELECT = "/cds-services/vertebral-augmentation-select"
REQUEST_TIMEOUT_S = 1.0
DEADLINE_S = 2.0
MARGIN_S = 1.5
PARTIAL = ("conditions", "observations")  # prefetched in the "partial" bodies
# What the stand-in's modes give when nothing was prefetched: usable-but-empty data is a 200.
ALL_FETCHED_STATUS = dict.fromkeys(MODES, 412) | {"wrong-types": 200}


def hook_body(fhir_server: str, prefetched: tuple[str, ...] = ()) -> dict[str, Any]:
    body = sample("order-select.json")
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in prefetched}
    body["fhirServer"] = fhir_server
    return body


def rule_ids(response: Any) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response.json()["cards"]]


def timed(client: TestClient, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.post(SELECT, json=body)
    return response, time.monotonic() - started


@pytest.fixture(scope="module")
def bad_server() -> Iterator[BadFhirServer]:
    with BadFhirServer() as server:
        yield server


@pytest.fixture(scope="module")
def refused_base() -> str:
    return f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens here


@pytest.fixture(scope="module")
def faulty(
    tmp_path_factory: pytest.TempPathFactory, bad_server: BadFhirServer, refused_base: str
) -> Iterator[TestClient]:
    app = make_app(
        tmp_path_factory.mktemp("faults"),
        fhir_request_timeout_seconds=REQUEST_TIMEOUT_S,
        fetch_deadline_seconds=DEADLINE_S,
        fetch_max_pages=5,
        fetch_max_response_bytes=100_000,
        allowed_fhir_servers=[bad_server.root, refused_base],
    )
    with client_for(app) as client:
        yield client


@pytest.mark.parametrize("mode", [*MODES, "connection-refused"])
def test_with_nothing_prefetched_a_failing_server_gives_a_prompt_412(
    faulty: TestClient, bad_server: BadFhirServer, refused_base: str, mode: str
) -> None:
    base = refused_base if mode == "connection-refused" else bad_server.base(mode)
    response, elapsed = timed(faulty, hook_body(base))
    assert elapsed < DEADLINE_S + MARGIN_S
    assert response.status_code == ALL_FETCHED_STATUS.get(mode, 412), response.text
    if response.status_code == 412:
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "incomplete"
    else:
        assert "data-unavailable" in rule_ids(response)


@pytest.mark.parametrize("mode", [*MODES, "connection-refused"])
def test_with_part_prefetched_a_failing_server_gives_200_and_a_data_unavailable_card(
    faulty: TestClient, bad_server: BadFhirServer, refused_base: str, mode: str
) -> None:
    base = refused_base if mode == "connection-refused" else bad_server.base(mode)
    response, elapsed = timed(faulty, hook_body(base, PARTIAL))
    assert elapsed < DEADLINE_S + MARGIN_S
    assert response.status_code == 200, response.text
    assert {"copd-multilevel", "data-unavailable"} <= set(rule_ids(response))


def test_endless_next_links_stop_at_the_page_cap(faulty: TestClient, bad_server: BadFhirServer) -> None:
    before = bad_server.requests["endless-next"]
    response, _ = timed(faulty, hook_body(bad_server.base("endless-next"), PARTIAL))
    assert response.status_code == 200
    keys_fetched = 7  # the sample's nine prefetch keys less the two prefetched
    assert bad_server.requests["endless-next"] - before <= keys_fetched * 5


def test_a_slow_server_is_cut_off_by_the_fetch_deadline_even_with_a_long_request_timeout(
    tmp_path: Path, bad_server: BadFhirServer
) -> None:
    app = make_app(
        tmp_path,
        fhir_request_timeout_seconds=30,
        fetch_deadline_seconds=1.5,
        allowed_fhir_servers=[bad_server.root],
    )
    with client_for(app) as client:
        response, elapsed = timed(client, hook_body(bad_server.base("slow")))
    assert response.status_code == 412
    assert elapsed < 1.5 + MARGIN_S


def test_the_overall_hook_deadline_answers_503_without_waiting_for_the_work(
    tmp_path: Path, bad_server: BadFhirServer
) -> None:
    app = make_app(
        tmp_path,
        fhir_request_timeout_seconds=5,
        fetch_deadline_seconds=5,
        hook_deadline_seconds=0.5,
        allowed_fhir_servers=[bad_server.root],
    )
    with client_for(app) as client:
        response, elapsed = timed(client, hook_body(bad_server.base("slow")))
    assert response.status_code == 503
    assert response.json()["issue"][0]["code"] == "timeout"
    assert elapsed < 0.5 + MARGIN_S


# --- the real FHIR server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_patient(fhir_server_with_token: FhirServer) -> str:
    patient_id = "faults-patient-1"
    fhir_server_with_token.put({"resourceType": "Patient", "id": patient_id, "birthDate": "1948-02-03"})
    fhir_server_with_token.put(active_condition("faults-copd", patient_id, "J44.9"))
    return patient_id


@pytest.fixture
def real_client(tmp_path: Path, fhir_server_with_token: FhirServer) -> Iterator[TestClient]:
    app = make_app(
        tmp_path,
        fhir_request_timeout_seconds=REQUEST_TIMEOUT_S,
        fetch_deadline_seconds=DEADLINE_S,
        allowed_fhir_servers=[fhir_server_with_token.base_url],
    )
    with client_for(app) as client:
        yield client


def test_the_real_server_with_the_right_token_gives_cards(
    real_client: TestClient, fhir_server_with_token: FhirServer, real_patient: str
) -> None:
    body = order_select(
        real_patient,
        augmentation_order("faults-order", real_patient),
        fhir_server=fhir_server_with_token.base_url,
        access_token=INTEGRATION_TOKEN,
    )
    response, elapsed = timed(real_client, body)
    assert response.status_code == 200, response.text
    assert "copd-multilevel" in rule_ids(response)
    assert elapsed < DEADLINE_S + MARGIN_S


def test_the_real_server_refusing_the_token_gives_a_prompt_412(
    real_client: TestClient, fhir_server_with_token: FhirServer, real_patient: str
) -> None:
    body = order_select(
        real_patient,
        augmentation_order("faults-order", real_patient),
        fhir_server=fhir_server_with_token.base_url,
        access_token="a-token-the-server-does-not-know",
    )
    response, elapsed = timed(real_client, body)
    assert response.status_code == 412
    assert "HTTP 401" in response.json()["issue"][0]["diagnostics"]
    assert elapsed < DEADLINE_S + MARGIN_S
